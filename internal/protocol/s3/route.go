package s3

import (
	"net/http"
	"strings"

	"github.com/claudefs/cfs-gateway/internal/protocol/s3/s3err"
)

// handler serves one operation.
type handler func(q *request) error

// operation is a routed request: its name and handler.
type operation struct {
	name string
	fn   handler
}

// notImplemented answers configuration subresources the gateway does not
// keep.
func notImplemented(what string) handler {
	return func(q *request) error {
		return s3err.NotImplemented.With("%s is not supported by this gateway.", what)
	}
}

// bucketSubresources maps a bucket-level query parameter to its operations
// per method.
var bucketSubresources = []struct {
	param string
	ops   map[string]operation
}{
	{"versioning", map[string]operation{"GET": {"GetBucketVersioning", (*request).getBucketVersioning}, "PUT": {"PutBucketVersioning", (*request).putBucketVersioning}}},
	{"tagging", map[string]operation{"GET": {"GetBucketTagging", (*request).getBucketTagging}, "PUT": {"PutBucketTagging", (*request).putBucketTagging}, "DELETE": {"DeleteBucketTagging", (*request).deleteBucketTagging}}},
	{"policyStatus", map[string]operation{"GET": {"GetBucketPolicyStatus", (*request).getBucketPolicyStatus}}},
	{"policy", map[string]operation{"GET": {"GetBucketPolicy", (*request).getBucketPolicy}, "PUT": {"PutBucketPolicy", (*request).putBucketPolicy}, "DELETE": {"DeleteBucketPolicy", (*request).deleteBucketPolicy}}},
	{"cors", map[string]operation{"GET": {"GetBucketCors", (*request).getBucketCORS}, "PUT": {"PutBucketCors", (*request).putBucketCORS}, "DELETE": {"DeleteBucketCors", (*request).deleteBucketCORS}}},
	{"acl", map[string]operation{"GET": {"GetBucketAcl", (*request).getBucketACL}, "PUT": {"PutBucketAcl", (*request).putBucketACL}}},
	{"object-lock", map[string]operation{"GET": {"GetObjectLockConfiguration", (*request).getObjectLockConfig}, "PUT": {"PutObjectLockConfiguration", (*request).putObjectLockConfig}}},
	{"location", map[string]operation{"GET": {"GetBucketLocation", (*request).getBucketLocation}}},
	{"uploads", map[string]operation{"GET": {"ListMultipartUploads", (*request).listMultipartUploads}}},
	{"versions", map[string]operation{"GET": {"ListObjectVersions", (*request).listObjectVersions}}},
	{"publicAccessBlock", map[string]operation{"GET": {"GetPublicAccessBlock", (*request).getPublicAccessBlock}, "PUT": {"PutPublicAccessBlock", (*request).putPublicAccessBlock}, "DELETE": {"DeletePublicAccessBlock", (*request).deletePublicAccessBlock}}},
	{"ownershipControls", map[string]operation{"GET": {"GetBucketOwnershipControls", (*request).getOwnershipControls}, "PUT": {"PutBucketOwnershipControls", (*request).putOwnershipControls}, "DELETE": {"DeleteBucketOwnershipControls", (*request).deleteOwnershipControls}}},
	{"delete", map[string]operation{"POST": {"DeleteObjects", (*request).deleteObjects}}},
	{"lifecycle", map[string]operation{"GET": {"GetBucketLifecycleConfiguration", (*request).getBucketLifecycle}, "PUT": {"PutBucketLifecycleConfiguration", (*request).putBucketLifecycle}, "DELETE": {"DeleteBucketLifecycle", (*request).deleteBucketLifecycle}}},
	{"encryption", map[string]operation{"GET": {"GetBucketEncryption", (*request).noSuchEncryption}, "PUT": {"PutBucketEncryption", notImplemented("Bucket encryption")}, "DELETE": {"DeleteBucketEncryption", (*request).deleteNothing}}},
	{"logging", map[string]operation{"GET": {"GetBucketLogging", (*request).getBucketLogging}, "PUT": {"PutBucketLogging", notImplemented("Bucket logging")}}},
	{"website", map[string]operation{"GET": {"GetBucketWebsite", notImplemented("Bucket websites")}, "PUT": {"PutBucketWebsite", notImplemented("Bucket websites")}, "DELETE": {"DeleteBucketWebsite", (*request).deleteNothing}}},
	{"replication", map[string]operation{"GET": {"GetBucketReplication", notImplemented("Replication")}, "PUT": {"PutBucketReplication", notImplemented("Replication")}, "DELETE": {"DeleteBucketReplication", (*request).deleteNothing}}},
	{"notification", map[string]operation{"GET": {"GetBucketNotification", notImplemented("Bucket notifications")}, "PUT": {"PutBucketNotification", notImplemented("Bucket notifications")}}},
	{"requestPayment", map[string]operation{"GET": {"GetBucketRequestPayment", notImplemented("Requester pays")}, "PUT": {"PutBucketRequestPayment", notImplemented("Requester pays")}}},
	{"accelerate", map[string]operation{"GET": {"GetBucketAccelerate", notImplemented("Transfer acceleration")}, "PUT": {"PutBucketAccelerate", notImplemented("Transfer acceleration")}}},
	{"analytics", map[string]operation{"GET": {"GetBucketAnalytics", notImplemented("Analytics")}, "PUT": {"PutBucketAnalytics", notImplemented("Analytics")}, "DELETE": {"DeleteBucketAnalytics", notImplemented("Analytics")}}},
	{"inventory", map[string]operation{"GET": {"GetBucketInventory", notImplemented("Inventory")}, "PUT": {"PutBucketInventory", notImplemented("Inventory")}, "DELETE": {"DeleteBucketInventory", notImplemented("Inventory")}}},
	{"metrics", map[string]operation{"GET": {"GetBucketMetrics", notImplemented("Bucket metrics")}, "PUT": {"PutBucketMetrics", notImplemented("Bucket metrics")}, "DELETE": {"DeleteBucketMetrics", notImplemented("Bucket metrics")}}},
	{"intelligent-tiering", map[string]operation{"GET": {"GetBucketIntelligentTiering", notImplemented("Intelligent tiering")}, "PUT": {"PutBucketIntelligentTiering", notImplemented("Intelligent tiering")}}},
}

// objectSubresources maps an object-level query parameter to its
// operations per method.
var objectSubresources = []struct {
	param string
	ops   map[string]operation
}{
	{"uploadId", map[string]operation{"GET": {"ListParts", (*request).listParts}, "PUT": {"UploadPart", (*request).uploadPart}, "POST": {"CompleteMultipartUpload", (*request).completeMultipartUpload}, "DELETE": {"AbortMultipartUpload", (*request).abortMultipartUpload}}},
	{"uploads", map[string]operation{"POST": {"CreateMultipartUpload", (*request).createMultipartUpload}}},
	{"tagging", map[string]operation{"GET": {"GetObjectTagging", (*request).getObjectTagging}, "PUT": {"PutObjectTagging", (*request).putObjectTagging}, "DELETE": {"DeleteObjectTagging", (*request).deleteObjectTagging}}},
	{"acl", map[string]operation{"GET": {"GetObjectAcl", (*request).getObjectACL}, "PUT": {"PutObjectAcl", (*request).putObjectACL}}},
	{"retention", map[string]operation{"GET": {"GetObjectRetention", (*request).getObjectRetention}, "PUT": {"PutObjectRetention", (*request).putObjectRetention}}},
	{"legal-hold", map[string]operation{"GET": {"GetObjectLegalHold", (*request).getObjectLegalHold}, "PUT": {"PutObjectLegalHold", (*request).putObjectLegalHold}}},
	{"attributes", map[string]operation{"GET": {"GetObjectAttributes", (*request).getObjectAttributes}}},
	{"restore", map[string]operation{"POST": {"RestoreObject", notImplemented("Object restore")}}},
	{"select", map[string]operation{"POST": {"SelectObjectContent", notImplemented("S3 Select")}}},
	{"torrent", map[string]operation{"GET": {"GetObjectTorrent", (*request).noTorrent}}},
}

// pick chooses the operation of the request.
func (q *request) pick() (operation, error) {
	m := q.r.Method
	switch {
	case q.bucket == "":
		if m == http.MethodGet {
			return operation{"ListBuckets", (*request).listBuckets}, nil
		}
		return operation{}, s3err.MethodNotAllowed
	case q.key == "":
		for _, sr := range bucketSubresources {
			if q.has(sr.param) {
				if op, ok := sr.ops[m]; ok {
					return op, nil
				}
				return operation{}, s3err.MethodNotAllowed
			}
		}
		switch m {
		case http.MethodGet:
			if q.get("list-type") == "2" {
				return operation{"ListObjectsV2", (*request).listObjectsV2}, nil
			}
			return operation{"ListObjects", (*request).listObjectsV1}, nil
		case http.MethodHead:
			return operation{"HeadBucket", (*request).headBucket}, nil
		case http.MethodPut:
			return operation{"CreateBucket", (*request).createBucket}, nil
		case http.MethodDelete:
			return operation{"DeleteBucket", (*request).deleteBucket}, nil
		case http.MethodPost:
			if strings.HasPrefix(q.r.Header.Get("Content-Type"), "multipart/form-data") {
				return operation{"PostObject", (*request).postObject}, nil
			}
		}
		return operation{}, s3err.MethodNotAllowed
	}
	for _, sr := range objectSubresources {
		if q.has(sr.param) {
			if op, ok := sr.ops[m]; ok {
				if op.name == "UploadPart" && q.r.Header.Get("X-Amz-Copy-Source") != "" {
					return operation{"UploadPartCopy", (*request).uploadPartCopy}, nil
				}
				return op, nil
			}
			return operation{}, s3err.MethodNotAllowed
		}
	}
	switch m {
	case http.MethodGet:
		return operation{"GetObject", (*request).getObject}, nil
	case http.MethodHead:
		return operation{"HeadObject", (*request).headObject}, nil
	case http.MethodPut:
		if q.r.Header.Get("X-Amz-Copy-Source") != "" {
			return operation{"CopyObject", (*request).copyObject}, nil
		}
		return operation{"PutObject", (*request).putObject}, nil
	case http.MethodDelete:
		return operation{"DeleteObject", (*request).deleteObject}, nil
	}
	return operation{}, s3err.MethodNotAllowed
}

// route authenticates and serves the request.
func (q *request) route() {
	if q.r.Method == http.MethodOptions {
		q.op = "PreflightCORS"
		if err := q.preflight(); err != nil {
			q.fail(err)
		}
		return
	}
	op, err := q.pick()
	if op.name != "" {
		q.op = op.name
	}
	if err != nil {
		q.fail(err)
		return
	}
	if op.name == "PostObject" {
		// Browser uploads authenticate with their signed policy form.
		if err := op.fn(q); err != nil {
			q.fail(err)
		}
		return
	}
	if err := q.authenticate(); err != nil {
		q.fail(err)
		return
	}
	if err := op.fn(q); err != nil {
		q.fail(err)
	}
}

// noTorrent answers GetObjectTorrent: the gateway makes no torrents, as
// S3 makes none for some objects.
func (q *request) noTorrent() error {
	if _, _, err := q.objectFor(access{action: "s3:GetObjectTorrent", perm: permRead, onObject: true}); err != nil {
		return err
	}
	return s3err.NoSuchKey.With("No torrent is available for this object.")
}
