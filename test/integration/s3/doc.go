// Package s3it tests the S3 front-end with real clients (aws-sdk-go-v2 and
// minio-go) over HTTP and TLS, against a gateway on a real core. It holds
// tests only: nothing imports it.
package s3it
