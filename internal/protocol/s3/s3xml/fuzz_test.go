package s3xml

import (
	"errors"
	"testing"

	"github.com/claudefs/cfs-gateway/internal/protocol/s3/s3err"
)

// fuzzParse checks that a parser either succeeds or fails with an S3 error,
// whatever the input.
func fuzzParse(f *testing.F, seeds []string, parse func([]byte) error) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		err := parse(body)
		var e *s3err.Error
		if err != nil && !errors.As(err, &e) {
			t.Fatalf("error %v is not an *s3err.Error", err)
		}
	})
}

func FuzzParseCompleteMultipartUpload(f *testing.F) {
	fuzzParse(f, []string{
		`<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"a"</ETag><ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part></CompleteMultipartUpload>`,
		`<CompleteMultipartUpload><Part><PartNumber>2</PartNumber></Part><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>`,
	}, func(b []byte) error { _, err := ParseCompleteMultipartUpload(b); return err })
}

func FuzzParseDelete(f *testing.F) {
	fuzzParse(f, []string{
		`<Delete><Quiet>true</Quiet><Object><Key>a</Key><VersionId>null</VersionId></Object></Delete>`,
		`<Delete><Object><Key></Key></Object></Delete>`,
	}, func(b []byte) error { _, err := ParseDelete(b); return err })
}

func FuzzParseTagging(f *testing.F) {
	fuzzParse(f, []string{
		`<Tagging><TagSet><Tag><Key>a</Key><Value>b</Value></Tag></TagSet></Tagging>`,
	}, func(b []byte) error { _, err := ParseTagging(b, MaxObjectTags); return err })
}

func FuzzParseCORS(f *testing.F) {
	fuzzParse(f, []string{
		`<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod><AllowedOrigin>*</AllowedOrigin><AllowedHeader>x-*</AllowedHeader><MaxAgeSeconds>3</MaxAgeSeconds></CORSRule></CORSConfiguration>`,
	}, func(b []byte) error { _, err := ParseCORS(b); return err })
}

func FuzzParseVersioning(f *testing.F) {
	fuzzParse(f, []string{
		`<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>`,
	}, func(b []byte) error { _, err := ParseVersioning(b); return err })
}

func FuzzParseObjectLock(f *testing.F) {
	fuzzParse(f, []string{
		`<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>GOVERNANCE</Mode><Days>1</Days></DefaultRetention></Rule></ObjectLockConfiguration>`,
		`<Retention><Mode>COMPLIANCE</Mode><RetainUntilDate>2030-01-01T00:00:00Z</RetainUntilDate></Retention>`,
		`<LegalHold><Status>ON</Status></LegalHold>`,
	}, func(b []byte) error {
		_, err1 := ParseObjectLockConfiguration(b)
		_, _, err2 := ParseRetention(b)
		_, err3 := ParseLegalHold(b)
		return errors.Join(err1, err2, err3)
	})
}

func FuzzParseACL(f *testing.F) {
	fuzzParse(f, []string{
		`<AccessControlPolicy><Owner><ID>a</ID></Owner><AccessControlList><Grant><Grantee><URI>http://acs.amazonaws.com/groups/global/AllUsers</URI></Grantee><Permission>READ</Permission></Grant></AccessControlList></AccessControlPolicy>`,
		`<CreateBucketConfiguration><LocationConstraint>x</LocationConstraint></CreateBucketConfiguration>`,
	}, func(b []byte) error {
		_, err1 := ParseACL(b)
		_, err2 := ParseCreateBucket(b)
		return errors.Join(err1, err2)
	})
}

func FuzzParseLifecycle(f *testing.F) {
	fuzzParse(f, []string{
		`<LifecycleConfiguration><Rule><ID>a</ID><Filter><And><Prefix>p/</Prefix><Tag><Key>k</Key><Value>v</Value></Tag><ObjectSizeGreaterThan>1</ObjectSizeGreaterThan></And></Filter><Status>Enabled</Status><Expiration><Days>3</Days></Expiration><NoncurrentVersionExpiration><NoncurrentDays>2</NoncurrentDays><NewerNoncurrentVersions>1</NewerNoncurrentVersions></NoncurrentVersionExpiration></Rule></LifecycleConfiguration>`,
		`<LifecycleConfiguration><Rule><Prefix></Prefix><Status>Disabled</Status><Expiration><Date>2030-01-01T00:00:00Z</Date></Expiration><AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule></LifecycleConfiguration>`,
		`<LifecycleConfiguration><Rule><Filter/><Status>Enabled</Status><Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration><Transition><Days>1</Days><StorageClass>GLACIER</StorageClass></Transition></Rule></LifecycleConfiguration>`,
	}, func(b []byte) error { _, err := ParseLifecycle(b); return err })
}
