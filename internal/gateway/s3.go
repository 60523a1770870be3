package gateway

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/claudefs/cfs-gateway/internal/admin"
	"github.com/claudefs/cfs-gateway/internal/config"
	"github.com/claudefs/cfs-gateway/internal/protocol/s3"
)

// startS3 builds the S3 server from the configuration and binds s3.listen,
// with TLS when s3.tls_cert_file and s3.tls_key_file are set.
func startS3(g *Gateway, cfg *config.Config) ([]Service, func(context.Context) error, error) {
	srv := s3.New(s3.Config{
		FS:                 g.fs,
		Root:               cfg.S3.Root,
		Region:             cfg.S3.Region,
		VirtualHostSuffix:  cfg.S3.VirtualHostSuffix,
		MultipartChunkMin:  cfg.S3.MultipartChunkMin,
		PartTimeout:        cfg.S3.PartTimeout(),
		MaxConcurrentParts: cfg.S3.MaxConcurrentParts,
		LifecycleInterval:  lifecycleInterval(cfg.S3),
		Metrics:            g.metrics,
		Logger:             g.log,
	})
	l, err := net.Listen("tcp", cfg.S3.Listen)
	if err != nil {
		return nil, nil, listenError("the S3 API", "s3.listen", cfg.S3.Listen, err)
	}
	tls := cfg.S3.TLSCertFile != "" && cfg.S3.TLSKeyFile != ""
	go func() {
		var err error
		if tls {
			err = srv.ServeTLS(l, cfg.S3.TLSCertFile, cfg.S3.TLSKeyFile)
		} else {
			err = srv.Serve(l)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			g.log.Error("S3 listener stopped", "addr", l.Addr().String(), "err", err)
		}
	}()
	addr := l.Addr().String()
	g.health.Add(admin.Component{Name: "s3 listener", Kind: admin.KindListener, Checker: listenerCheck(addr)})
	name := "s3"
	if tls {
		name = "s3 (tls)"
	}
	return []Service{{Name: name, Key: "s3.listen", Addr: addr, l: l}}, srv.Shutdown, nil
}

// lifecycleInterval maps s3.lifecycle_interval_secs, where 0 is off, to
// the S3 server's setting, where off is negative.
func lifecycleInterval(c config.S3) time.Duration {
	if d := c.LifecycleInterval(); d > 0 {
		return d
	}
	return -1
}
