package s3xml

import (
	"encoding/xml"
	"math"
	"time"
	"unicode/utf8"

	"github.com/claudefs/cfs-gateway/internal/protocol/s3/s3err"
)

// Limits of lifecycle configurations, as S3 has them.
const (
	MaxLifecycleRules     = 1000
	MaxLifecycleRuleIDLen = 255
	// MaxNewerNoncurrentVersions is the most noncurrent versions a rule
	// may keep.
	MaxNewerNoncurrentVersions = 100
)

// LifecycleConfiguration is the body of Put/GetBucketLifecycleConfiguration.
type LifecycleConfiguration struct {
	XMLName xml.Name        `xml:"LifecycleConfiguration"`
	Xmlns   string          `xml:"xmlns,attr,omitempty"`
	Rules   []LifecycleRule `xml:"Rule"`
}

// LifecycleRule is one rule: which objects (Filter, or the legacy
// Prefix) and what happens to them.
type LifecycleRule struct {
	ID     string           `xml:"ID,omitempty"`
	Filter *LifecycleFilter `xml:"Filter,omitempty"`
	// Prefix is the filter of rules written before Filter existed.
	Prefix                         *string                         `xml:"Prefix,omitempty"`
	Status                         string                          `xml:"Status"`
	Expiration                     *LifecycleExpiration            `xml:"Expiration,omitempty"`
	NoncurrentVersionExpiration    *NoncurrentVersionExpiration    `xml:"NoncurrentVersionExpiration,omitempty"`
	AbortIncompleteMultipartUpload *AbortIncompleteMultipartUpload `xml:"AbortIncompleteMultipartUpload,omitempty"`
	// Transitions and NoncurrentVersionTransitions are read only to be
	// refused: the gateway has one storage class.
	Transitions                  []LifecycleTransition `xml:"Transition,omitempty"`
	NoncurrentVersionTransitions []LifecycleTransition `xml:"NoncurrentVersionTransition,omitempty"`
}

// LifecycleFilter selects the objects of a rule by one condition, or by
// several under And. An empty filter selects the whole bucket.
type LifecycleFilter struct {
	Prefix *string `xml:"Prefix,omitempty"`
	// Tags holds the filter's Tag: more than one is malformed (several
	// tags go under And).
	Tags                  []Tag         `xml:"Tag,omitempty"`
	And                   *LifecycleAnd `xml:"And,omitempty"`
	ObjectSizeGreaterThan *int64        `xml:"ObjectSizeGreaterThan,omitempty"`
	ObjectSizeLessThan    *int64        `xml:"ObjectSizeLessThan,omitempty"`
}

// LifecycleAnd is a filter whose conditions must all hold.
type LifecycleAnd struct {
	Prefix                *string `xml:"Prefix,omitempty"`
	Tags                  []Tag   `xml:"Tag,omitempty"`
	ObjectSizeGreaterThan *int64  `xml:"ObjectSizeGreaterThan,omitempty"`
	ObjectSizeLessThan    *int64  `xml:"ObjectSizeLessThan,omitempty"`
}

// LifecycleExpiration expires current versions (Days or Date) or removes
// delete markers left alone (ExpiredObjectDeleteMarker).
type LifecycleExpiration struct {
	// Date is midnight UTC in ISO 8601; ParseLifecycle writes it in
	// TimeFormat.
	Date                      string `xml:"Date,omitempty"`
	Days                      *int   `xml:"Days,omitempty"`
	ExpiredObjectDeleteMarker *bool  `xml:"ExpiredObjectDeleteMarker,omitempty"`
}

// NoncurrentVersionExpiration removes noncurrent versions NoncurrentDays
// after they became noncurrent, keeping the NewerNoncurrentVersions newest.
type NoncurrentVersionExpiration struct {
	NoncurrentDays          *int `xml:"NoncurrentDays,omitempty"`
	NewerNoncurrentVersions *int `xml:"NewerNoncurrentVersions,omitempty"`
}

// AbortIncompleteMultipartUpload aborts uploads DaysAfterInitiation days
// after they began.
type AbortIncompleteMultipartUpload struct {
	DaysAfterInitiation *int `xml:"DaysAfterInitiation,omitempty"`
}

// LifecycleTransition is a storage class transition (refused).
type LifecycleTransition struct {
	Days         *int   `xml:"Days,omitempty"`
	Date         string `xml:"Date,omitempty"`
	StorageClass string `xml:"StorageClass,omitempty"`
}

// DateTime is the expiration date, when the rule has one (after
// ParseLifecycle checked it).
func (e *LifecycleExpiration) DateTime() (time.Time, bool) {
	if e == nil || e.Date == "" {
		return time.Time{}, false
	}
	t, err := parseLifecycleDate(e.Date)
	return t, err == nil
}

// parseLifecycleDate reads an ISO 8601 date-time (with or without
// fractional seconds).
func parseLifecycleDate(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}

// maxLifecycleDays bounds every day count: S3 reads them as 32-bit
// integers.
const maxLifecycleDays = math.MaxInt32

// ParseLifecycle parses and checks a lifecycle configuration as S3 does:
// MalformedXML for a document that does not parse or lacks a required
// element (a rule without a filter or without an action), InvalidArgument
// naming the field for a bad value, InvalidStorageClass for transitions.
// Rules keep an empty ID when they have none (the caller assigns one).
func ParseLifecycle(body []byte) (*LifecycleConfiguration, error) {
	var c LifecycleConfiguration
	if err := decode(body, &c); err != nil {
		return nil, err
	}
	if c.XMLName.Local != "LifecycleConfiguration" {
		return nil, s3err.MalformedXML.With("The root element must be LifecycleConfiguration.")
	}
	if len(c.Rules) == 0 {
		return nil, s3err.MalformedXML.With("A lifecycle configuration needs at least one Rule.")
	}
	if len(c.Rules) > MaxLifecycleRules {
		return nil, invalidLifecycle("Rule", "A lifecycle configuration has at most %d rules; this one has %d.", MaxLifecycleRules, len(c.Rules))
	}
	ids := make(map[string]bool, len(c.Rules))
	for i := range c.Rules {
		r := &c.Rules[i]
		if err := checkLifecycleRule(r); err != nil {
			return nil, err
		}
		if r.ID != "" {
			if ids[r.ID] {
				return nil, invalidLifecycle("ID", "Rule ID %q is used by more than one rule; rule IDs must be unique.", r.ID)
			}
			ids[r.ID] = true
		}
	}
	return &c, nil
}

// invalidLifecycle is an InvalidArgument about one field of a rule.
func invalidLifecycle(field, format string, args ...any) *s3err.Error {
	return s3err.InvalidArgument.With(format, args...).WithExtra("ArgumentName", field)
}

func checkLifecycleRule(r *LifecycleRule) error {
	if utf8.RuneCountInString(r.ID) > MaxLifecycleRuleIDLen {
		return invalidLifecycle("ID", "A rule ID has at most %d characters.", MaxLifecycleRuleIDLen)
	}
	if !utf8.ValidString(r.ID) {
		return invalidLifecycle("ID", "A rule ID must be valid UTF-8.")
	}
	switch r.Status {
	case "Enabled", "Disabled":
	default:
		return s3err.MalformedXML.With("Rule Status must be Enabled or Disabled.")
	}
	switch {
	case r.Filter != nil && r.Prefix != nil:
		return s3err.MalformedXML.With("A rule has either a Filter or a Prefix, not both.")
	case r.Filter == nil && r.Prefix == nil:
		return s3err.MalformedXML.With("A rule needs a Filter (or the older Prefix).")
	}
	if len(r.Transitions) > 0 {
		return s3err.InvalidStorageClass.With("Transition is not supported: this gateway keeps every object in one storage class (STANDARD), so there is nothing to transition to. Use Expiration to delete objects instead.")
	}
	if len(r.NoncurrentVersionTransitions) > 0 {
		return s3err.InvalidStorageClass.With("NoncurrentVersionTransition is not supported: this gateway keeps every version in one storage class (STANDARD). Use NoncurrentVersionExpiration to delete noncurrent versions instead.")
	}
	if r.Expiration == nil && r.NoncurrentVersionExpiration == nil && r.AbortIncompleteMultipartUpload == nil {
		return s3err.MalformedXML.With("A rule needs at least one action: Expiration, NoncurrentVersionExpiration or AbortIncompleteMultipartUpload.")
	}
	tagged := false
	if f := r.Filter; f != nil {
		var err error
		if tagged, err = checkLifecycleFilter(f); err != nil {
			return err
		}
	}
	if e := r.Expiration; e != nil {
		if err := checkExpiration(e, tagged); err != nil {
			return err
		}
	}
	if n := r.NoncurrentVersionExpiration; n != nil {
		if n.NoncurrentDays == nil && n.NewerNoncurrentVersions == nil {
			return s3err.MalformedXML.With("NoncurrentVersionExpiration needs NoncurrentDays or NewerNoncurrentVersions.")
		}
		if d := n.NoncurrentDays; d != nil && (*d <= 0 || *d > maxLifecycleDays) {
			return invalidLifecycle("NoncurrentDays", "'NoncurrentDays' in the NoncurrentVersionExpiration action must be a positive integer.")
		}
		if v := n.NewerNoncurrentVersions; v != nil && (*v <= 0 || *v > MaxNewerNoncurrentVersions) {
			return invalidLifecycle("NewerNoncurrentVersions", "'NewerNoncurrentVersions' must be an integer from 1 to %d.", MaxNewerNoncurrentVersions)
		}
	}
	if a := r.AbortIncompleteMultipartUpload; a != nil {
		if a.DaysAfterInitiation == nil {
			return s3err.MalformedXML.With("AbortIncompleteMultipartUpload needs DaysAfterInitiation.")
		}
		if d := *a.DaysAfterInitiation; d <= 0 || d > maxLifecycleDays {
			return invalidLifecycle("DaysAfterInitiation", "'DaysAfterInitiation' in the AbortIncompleteMultipartUpload action must be a positive integer.")
		}
		if tagged {
			return invalidLifecycle("Tag", "AbortIncompleteMultipartUpload cannot be given with a Tag filter: uploads have no tags until they complete.")
		}
	}
	return nil
}

// checkLifecycleFilter checks a Filter and reports whether it has tags.
func checkLifecycleFilter(f *LifecycleFilter) (bool, error) {
	n := 0
	for _, set := range []bool{f.Prefix != nil, len(f.Tags) > 0, f.And != nil, f.ObjectSizeGreaterThan != nil, f.ObjectSizeLessThan != nil} {
		if set {
			n++
		}
	}
	if n > 1 || len(f.Tags) > 1 {
		return false, s3err.MalformedXML.With("A Filter has at most one of Prefix, Tag, ObjectSizeGreaterThan, ObjectSizeLessThan and And; combine conditions under And.")
	}
	if err := checkSizes(f.ObjectSizeGreaterThan, f.ObjectSizeLessThan); err != nil {
		return false, err
	}
	if err := checkFilterTags(f.Tags); err != nil {
		return false, err
	}
	if a := f.And; a != nil {
		if a.Prefix == nil && len(a.Tags) == 0 && a.ObjectSizeGreaterThan == nil && a.ObjectSizeLessThan == nil {
			return false, s3err.MalformedXML.With("An And filter needs at least one condition.")
		}
		if err := checkSizes(a.ObjectSizeGreaterThan, a.ObjectSizeLessThan); err != nil {
			return false, err
		}
		if err := checkFilterTags(a.Tags); err != nil {
			return false, err
		}
		return len(a.Tags) > 0, nil
	}
	return len(f.Tags) > 0, nil
}

func checkSizes(gt, lt *int64) error {
	if gt != nil && *gt < 0 {
		return invalidLifecycle("ObjectSizeGreaterThan", "'ObjectSizeGreaterThan' must not be negative.")
	}
	if lt != nil && *lt <= 0 {
		return invalidLifecycle("ObjectSizeLessThan", "'ObjectSizeLessThan' must be a positive integer.")
	}
	if gt != nil && lt != nil && *gt >= *lt {
		return invalidLifecycle("ObjectSizeGreaterThan", "'ObjectSizeGreaterThan' (%d) must be less than 'ObjectSizeLessThan' (%d).", *gt, *lt)
	}
	return nil
}

func checkFilterTags(tags []Tag) error {
	seen := make(map[string]bool, len(tags))
	for _, t := range tags {
		switch {
		case t.Key == "" || utf8.RuneCountInString(t.Key) > MaxTagKeyLen || !utf8.ValidString(t.Key):
			return invalidLifecycle("Tag", "A filter Tag needs a Key of 1 to %d characters.", MaxTagKeyLen)
		case utf8.RuneCountInString(t.Value) > MaxTagValueLen || !utf8.ValidString(t.Value):
			return invalidLifecycle("Tag", "The Value of filter Tag %q has more than %d characters.", t.Key, MaxTagValueLen)
		case seen[t.Key]:
			return invalidLifecycle("Tag", "Filter Tag key %q is given more than once.", t.Key)
		}
		seen[t.Key] = true
	}
	return nil
}

func checkExpiration(e *LifecycleExpiration, tagged bool) error {
	marker := e.ExpiredObjectDeleteMarker != nil
	switch {
	case e.Days == nil && e.Date == "" && !marker:
		return s3err.MalformedXML.With("Expiration needs Days, Date or ExpiredObjectDeleteMarker.")
	case e.Days != nil && e.Date != "":
		return invalidLifecycle("Date", "Expiration has both Days and Date; give one of them.")
	case marker && (e.Days != nil || e.Date != ""):
		return invalidLifecycle("ExpiredObjectDeleteMarker", "ExpiredObjectDeleteMarker cannot be given with Days or Date in one Expiration; use two rules.")
	case marker && tagged && *e.ExpiredObjectDeleteMarker:
		return invalidLifecycle("ExpiredObjectDeleteMarker", "ExpiredObjectDeleteMarker cannot be given with a Tag filter: delete markers have no tags.")
	}
	if d := e.Days; d != nil && (*d <= 0 || *d > maxLifecycleDays) {
		return invalidLifecycle("Days", "'Days' in the Expiration action must be a positive integer.")
	}
	if e.Date != "" {
		t, err := parseLifecycleDate(e.Date)
		if err != nil {
			return invalidLifecycle("Date", "'Date' in the Expiration action must be an ISO 8601 date-time such as 2030-01-01T00:00:00Z.")
		}
		if !t.Equal(t.Truncate(24 * time.Hour)) {
			return invalidLifecycle("Date", "'Date' in the Expiration action must be at midnight UTC.")
		}
		e.Date = Time(t)
	}
	return nil
}
