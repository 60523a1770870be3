package s3blob

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/minio/minio-go/v7"

	"github.com/claudefs/cfs-gateway/internal/engine/blob"
)

// mapError gives an S3 client error its meaning for the blob contract: a
// missing object is blob.ErrNotFound; everything else keeps its cause and
// says what failed.
func (s *Store) mapError(err error, op, key string) error {
	resp := answer(err)
	switch {
	case resp.Code == "NoSuchKey" || (resp.StatusCode == http.StatusNotFound && resp.Code != "NoSuchBucket"):
		return fmt.Errorf("s3blob: %s %s: %w", op, key, blob.ErrNotFound)
	case resp.Code == "NoSuchBucket":
		return fmt.Errorf("s3blob: %s %s: bucket %q does not exist; create it or fix blob.s3.bucket: %w", op, key, s.bucket, err)
	case resp.Code == "AccessDenied" || resp.Code == "InvalidAccessKeyId" || resp.Code == "SignatureDoesNotMatch":
		return fmt.Errorf("s3blob: %s %s: the object store refused the credentials (blob.s3.access_key, secret_key): %w", op, key, err)
	}
	return fmt.Errorf("s3blob: %s %s: %w", op, key, err)
}

// isFailure reports whether an error is the object store's fault, which
// counts against its circuit breaker and is answered "retry later": no
// answer at all (refused, reset, timed out), a 5xx answer, or an explicit
// request to slow down. Other answers (not found, access denied, invalid
// range) are the store working.
func isFailure(err error) bool {
	if errors.Is(err, blob.ErrNotFound) {
		return false
	}
	resp := answer(err)
	switch {
	case resp.Code == "" && resp.StatusCode == 0:
		// Not an answer of the store: the request failed in transit.
		return true
	case resp.StatusCode >= 500, resp.StatusCode == http.StatusTooManyRequests:
		return true
	case resp.Code == "SlowDown", resp.Code == "RequestTimeout", resp.Code == "ServiceUnavailable", resp.Code == "InternalError":
		return true
	}
	return false
}

// answer returns the store's error answer inside err, or a zero one when
// err did not come from an answer.
func answer(err error) minio.ErrorResponse {
	var resp minio.ErrorResponse
	errors.As(err, &resp)
	return resp
}
