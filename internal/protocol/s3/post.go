package s3

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"

	"github.com/claudefs/cfs-gateway/internal/protocol/s3/s3err"
	"github.com/claudefs/cfs-gateway/internal/protocol/s3/s3xml"
)

// Limits of a browser POST upload's form fields (S3 allows 20 KB of them).
const (
	maxPostField  = 20 << 10
	maxPostFields = 64 << 10
)

// postResponse answers a POST upload with success_action_status 201.
type postResponse struct {
	XMLName  struct{} `xml:"PostResponse"`
	Location string   `xml:"Location"`
	Bucket   string   `xml:"Bucket"`
	Key      string   `xml:"Key"`
	ETag     string   `xml:"ETag"`
}

// postChecksum is a checksum field of a POST upload.
type postChecksum struct {
	alg, want string
	h         hash.Hash
}

// hashingReader hashes what passes through it and counts it.
type hashingReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func (h *hashingReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	return n, err
}

// postObject serves a browser POST upload: a multipart/form-data body whose
// fields carry the key, metadata and a signed policy, and whose "file"
// field is the object.
func (q *request) postObject() error {
	b, err := q.loadBucket()
	if err != nil {
		return err
	}
	mr, err := q.r.MultipartReader()
	if err != nil {
		return s3err.MalformedPOSTRequest
	}
	form := map[string]string{}
	var file *multipart.Part
	total := 0
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return s3err.MalformedPOSTRequest.With("The body of your POST request is not well-formed multipart/form-data: %v", err)
		}
		name := p.FormName()
		if strings.EqualFold(name, "file") {
			file = p
			if fn := p.FileName(); fn != "" {
				form["__filename"] = fn
			}
			break
		}
		v, err := io.ReadAll(io.LimitReader(p, maxPostField+1))
		if err != nil {
			return s3err.MalformedPOSTRequest
		}
		if len(v) > maxPostField {
			return s3err.MaxMessageLengthExceeded.With("The form field %q is too large.", name)
		}
		total += len(v)
		if total > maxPostFields {
			return s3err.MaxMessageLengthExceeded.With("The form fields of the POST request are too large.")
		}
		form[name] = string(v)
	}
	if file == nil {
		return s3err.InvalidArgument.With("POST requires exactly one file upload per request.").WithExtra("ArgumentName", "file")
	}
	filename := form["__filename"]
	delete(form, "__filename")
	fields := map[string]string{}
	for k, v := range form {
		fields[strings.ToLower(k)] = v
	}
	key, ok := fields["key"]
	if !ok {
		return s3err.InvalidArgument.With("Bucket POST must contain a field named 'key'.  If it is specified, please check the order of the fields.").WithExtra("ArgumentName", "key")
	}
	key = strings.ReplaceAll(key, "${filename}", filename)
	q.key = key
	accessKey, policy, err := q.s.auth.VerifyPost(q.ctx, form)
	if err != nil {
		return err
	}
	if accessKey == "" {
		q.setAnonymous()
	} else if err := q.setUser(accessKey); err != nil {
		return err
	}
	if policy != nil {
		check := map[string]string{}
		for k, v := range form {
			check[k] = v
		}
		check["bucket"] = b.name
		for k := range check {
			if strings.EqualFold(k, "key") {
				check[k] = key
			}
		}
		if err := policy.Check(check); err != nil {
			return err
		}
	}
	if err := q.authorize(b, access{action: "s3:PutObject", perm: permWrite}, nil); err != nil {
		return err
	}
	kp, err := splitKey(key)
	if err != nil {
		return err
	}
	if kp.marker {
		return errDirectoryKeyBody
	}
	// The form's fields stand for the headers of a PUT.
	h := http.Header{}
	for k, v := range fields {
		switch {
		case k == "content-type", k == "cache-control", k == "content-disposition", k == "content-encoding", k == "expires",
			strings.HasPrefix(k, "x-amz-meta-"), k == "x-amz-acl", k == "x-amz-storage-class":
			h.Set(k, v)
		case k == "tagging":
			t, err := s3xml.ParseTagging([]byte(v), s3xml.MaxObjectTags)
			if err != nil {
				return err
			}
			h.Set("X-Amz-Tagging", string(encodeTags(t.TagSet)))
		}
	}
	saved := q.r.Header
	q.r.Header = h
	var v newVersion
	err = q.objectOptions(b, &v)
	q.r.Header = saved
	if err != nil {
		return err
	}
	body := &hashingReader{r: file, h: md5.New()}
	var ck *postChecksum
	for k, v := range fields {
		if alg, ok := strings.CutPrefix(k, "x-amz-checksum-"); ok && alg != "algorithm" && alg != "type" {
			h, ok := newChecksum(strings.ToUpper(alg))
			if !ok {
				return s3err.InvalidRequest.With("Checksum algorithm %q is not supported.", alg)
			}
			ck = &postChecksum{alg: strings.ToUpper(alg), want: v, h: h}
			body.r = io.TeeReader(body.r, h)
		}
	}
	q.auth = &verified{Body: io.NopCloser(body), DecodedLength: -1}
	dir, err := q.s.ensureDirs(q.ctx, q.ident, b, kp)
	if err != nil {
		return err
	}
	v.tmp, err = q.s.fs.CreateTemp(q.ctx, q.ident, dir, fileMode)
	if err != nil {
		q.s.pruneDirs(contextBackground(), b, kp)
		return err
	}
	published := false
	defer func() {
		if !published {
			q.s.discard(v.tmp.Ino)
			q.s.pruneDirs(contextBackground(), b, kp)
		}
	}()
	if _, err := q.writeBody(v.tmp.Ino, body, nil); err != nil {
		return err
	}
	if policy != nil {
		if err := policy.CheckLength(body.n); err != nil {
			return err
		}
	}
	if ck != nil {
		got := base64.StdEncoding.EncodeToString(ck.h.Sum(nil))
		if got != ck.want {
			return s3err.BadDigest.With("The x-amz-checksum-%s you specified did not match the calculated checksum.", strings.ToLower(ck.alg))
		}
		v.meta.Checksums = map[string]string{ck.alg: got}
		v.meta.ChecksumType = "FULL_OBJECT"
	}
	if err := q.s.fs.Commit(q.ctx, v.tmp.Ino); err != nil {
		return err
	}
	if v.tmp, err = q.s.fs.GetAttr(q.ctx, v.tmp.Ino); err != nil {
		return err
	}
	v.etag = hex.EncodeToString(body.h.Sum(nil))
	if _, err := q.publish(b, kp, dir, &v, nil); err != nil {
		return err
	}
	published = true
	etag := `"` + v.etag + `"`
	q.w.Header().Set("ETag", etag)
	if b.versioning() == "Enabled" {
		q.w.Header().Set("X-Amz-Version-Id", versionOrNull(v.meta.VersionID))
	}
	location := "/" + b.name + "/" + key
	if redirect := fields["success_action_redirect"]; redirect != "" {
		if u, err := url.Parse(redirect); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
			sep := "?"
			if u.RawQuery != "" {
				sep = "&"
			}
			loc := redirect + sep + "bucket=" + url.QueryEscape(b.name) + "&key=" + url.QueryEscape(key) + "&etag=" + url.QueryEscape(etag)
			q.w.Header().Set("Location", loc)
			return q.reply(http.StatusSeeOther)
		}
	}
	switch fields["success_action_status"] {
	case "200":
		return q.reply(200)
	case "201":
		q.w.Header().Set("Location", location)
		return q.writeXML(201, postResponse{Location: location, Bucket: b.name, Key: key, ETag: etag})
	}
	q.w.Header().Set("Location", location)
	return q.reply(http.StatusNoContent)
}
