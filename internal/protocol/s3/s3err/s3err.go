// Package s3err defines the S3 error responses: the AWS error codes with
// their HTTP statuses, and their XML body. Every part of the S3 front-end
// (authentication, request parsing, handlers) reports failures as *Error so
// that clients always get an error in S3's own terms. It knows nothing of
// the filesystem.
package s3err

import (
	"encoding/xml"
	"fmt"
	"net/http"
)

// Error is an S3 error response.
type Error struct {
	Code    string // the AWS error code, e.g. "NoSuchKey"
	Message string
	Status  int // the HTTP status
	// Resource, BucketName and Key are filled in by the handler when known.
	Resource   string
	BucketName string
	Key        string
	// Extra elements some codes carry (e.g. "ArgumentName", "MinSizeAllowed").
	Extra map[string]string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Is makes errors.Is match errors with the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// With returns a copy of e with another message.
func (e *Error) With(format string, args ...any) *Error {
	c := *e
	c.Message = fmt.Sprintf(format, args...)
	return &c
}

// WithExtra returns a copy of e carrying an extra element.
func (e *Error) WithExtra(name, value string) *Error {
	c := *e
	c.Extra = map[string]string{}
	for k, v := range e.Extra {
		c.Extra[k] = v
	}
	c.Extra[name] = value
	return &c
}

type xmlError struct {
	XMLName    xml.Name `xml:"Error"`
	Code       string   `xml:"Code"`
	Message    string   `xml:"Message"`
	Resource   string   `xml:"Resource,omitempty"`
	BucketName string   `xml:"BucketName,omitempty"`
	Key        string   `xml:"Key,omitempty"`
	RequestID  string   `xml:"RequestId"`
	HostID     string   `xml:"HostId"`
	Extra      []xmlExtra
}

type xmlExtra struct {
	XMLName xml.Name
	Value   string `xml:",chardata"`
}

// Write sends e as the response, with its XML body unless the request was
// a HEAD (which has no body).
func (e *Error) Write(w http.ResponseWriter, r *http.Request, requestID string) {
	h := w.Header()
	h.Set("Content-Type", "application/xml")
	h.Set("x-amz-request-id", requestID)
	if r != nil && r.Method == http.MethodHead {
		w.WriteHeader(e.Status)
		return
	}
	body := xmlError{Code: e.Code, Message: e.Message, Resource: e.Resource, BucketName: e.BucketName,
		Key: e.Key, RequestID: requestID, HostID: requestID}
	for k, v := range e.Extra {
		body.Extra = append(body.Extra, xmlExtra{XMLName: xml.Name{Local: k}, Value: v})
	}
	out, err := xml.Marshal(body)
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	w.WriteHeader(e.Status)
	w.Write([]byte(xml.Header))
	w.Write(out)
}

func def(code string, status int, msg string) *Error {
	return &Error{Code: code, Status: status, Message: msg}
}

// The errors the gateway answers with. Handlers use them as they are, or
// with a more specific message (With).
var (
	AccessDenied                   = def("AccessDenied", 403, "Access Denied")
	AccountProblem                 = def("AccountProblem", 403, "There is a problem with your account.")
	AuthorizationHeaderMalformed   = def("AuthorizationHeaderMalformed", 400, "The authorization header is malformed.")
	AuthorizationQueryParamsError  = def("AuthorizationQueryParametersError", 400, "The authorization query parameters are malformed.")
	BadDigest                      = def("BadDigest", 400, "The Content-MD5 or checksum you specified did not match what we received.")
	BucketAlreadyExists            = def("BucketAlreadyExists", 409, "The requested bucket name is not available.")
	BucketAlreadyOwnedByYou        = def("BucketAlreadyOwnedByYou", 409, "Your previous request to create the named bucket succeeded and you already own it.")
	BucketNotEmpty                 = def("BucketNotEmpty", 409, "The bucket you tried to delete is not empty.")
	EntityTooLarge                 = def("EntityTooLarge", 400, "Your proposed upload exceeds the maximum allowed object size.")
	EntityTooSmall                 = def("EntityTooSmall", 400, "Your proposed upload is smaller than the minimum allowed object size.")
	ExpiredToken                   = def("ExpiredToken", 400, "The provided token has expired.")
	IncompleteBody                 = def("IncompleteBody", 400, "You did not provide the number of bytes specified by the Content-Length HTTP header.")
	InternalError                  = def("InternalError", 500, "We encountered an internal error. Please try again.")
	InvalidAccessKeyID             = def("InvalidAccessKeyId", 403, "The AWS access key ID you provided does not exist in our records.")
	InvalidArgument                = def("InvalidArgument", 400, "Invalid Argument")
	InvalidBucketName              = def("InvalidBucketName", 400, "The specified bucket is not valid.")
	InvalidBucketState             = def("InvalidBucketState", 409, "The request is not valid with the current state of the bucket.")
	InvalidDigest                  = def("InvalidDigest", 400, "The Content-MD5 or checksum you specified is not valid.")
	InvalidObjectState             = def("InvalidObjectState", 403, "The operation is not valid for the current state of the object.")
	InvalidPart                    = def("InvalidPart", 400, "One or more of the specified parts could not be found.")
	InvalidPartOrder               = def("InvalidPartOrder", 400, "The list of parts was not in ascending order.")
	InvalidRange                   = def("InvalidRange", 416, "The requested range is not satisfiable.")
	InvalidRequest                 = def("InvalidRequest", 400, "Invalid Request")
	InvalidStorageClass            = def("InvalidStorageClass", 400, "The storage class you specified is not valid.")
	KeyTooLong                     = def("KeyTooLongError", 400, "Your key is too long.")
	MalformedACLError              = def("MalformedACLError", 400, "The XML you provided was not well-formed or did not validate against our published schema.")
	MalformedPOSTRequest           = def("MalformedPOSTRequest", 400, "The body of your POST request is not well-formed multipart/form-data.")
	MalformedXML                   = def("MalformedXML", 400, "The XML you provided was not well-formed or did not validate against our published schema.")
	MaxMessageLengthExceeded       = def("MaxMessageLengthExceeded", 400, "Your request was too big.")
	MetadataTooLarge               = def("MetadataTooLarge", 400, "Your metadata headers exceed the maximum allowed metadata size.")
	MethodNotAllowed               = def("MethodNotAllowed", 405, "The specified method is not allowed against this resource.")
	MissingContentLength           = def("MissingContentLength", 411, "You must provide the Content-Length HTTP header.")
	MissingSecurityHeader          = def("MissingSecurityHeader", 400, "Your request is missing a required header.")
	NoSuchBucket                   = def("NoSuchBucket", 404, "The specified bucket does not exist.")
	NoSuchBucketPolicy             = def("NoSuchBucketPolicy", 404, "The bucket policy does not exist.")
	NoSuchCORSConfiguration        = def("NoSuchCORSConfiguration", 404, "The CORS configuration does not exist.")
	NoSuchKey                      = def("NoSuchKey", 404, "The specified key does not exist.")
	NoSuchTagSet                   = def("NoSuchTagSet", 404, "The TagSet does not exist.")
	NoSuchUpload                   = def("NoSuchUpload", 404, "The specified multipart upload does not exist.")
	NoSuchVersion                  = def("NoSuchVersion", 404, "The specified version does not exist.")
	NotImplemented                 = def("NotImplemented", 501, "A header you provided implies functionality that is not implemented.")
	ObjectLockConfigurationMissing = def("ObjectLockConfigurationNotFoundError", 404, "Object Lock configuration does not exist for this bucket.")
	PreconditionFailed             = def("PreconditionFailed", 412, "At least one of the preconditions you specified did not hold.")
	NotModified                    = def("NotModified", 304, "Not Modified")
	QuotaExceeded                  = def("QuotaExceeded", 403, "The owner of this bucket has no space left in their storage quota.")
	RequestTimeTooSkewed           = def("RequestTimeTooSkewed", 403, "The difference between the request time and the server's time is too large.")
	RequestTimeout                 = def("RequestTimeout", 400, "Your socket connection to the server was not read from or written to within the timeout period.")
	SignatureDoesNotMatch          = def("SignatureDoesNotMatch", 403, "The request signature we calculated does not match the signature you provided.")
	SlowDown                       = def("SlowDown", 503, "Please reduce your request rate.")
	ServiceUnavailable             = def("ServiceUnavailable", 503, "The service is unavailable. Please retry.")
	XAmzContentSHA256Mismatch      = def("XAmzContentSHA256Mismatch", 400, "The provided 'x-amz-content-sha256' header does not match what was computed.")
	InvalidTag                     = def("InvalidTag", 400, "The tag provided was not a valid tag.")
	ConditionalRequestConflict     = def("ConditionalRequestConflict", 409, "A conflicting operation occurred.")
)
