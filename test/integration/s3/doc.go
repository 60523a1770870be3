// Package s3it tests the S3 front-end with real clients against a gateway
// on a real core: aws-sdk-go-v2 and minio-go over HTTP and TLS, and the
// command-line clients awscli, s3cmd and rclone run as subprocesses. It
// holds tests only: nothing imports it.
package s3it
