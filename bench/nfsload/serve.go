package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	_ "net/http/pprof"
	"time"

	"github.com/claudefs/cfs-gateway/internal/config"
	"github.com/claudefs/cfs-gateway/internal/gateway"
	"github.com/claudefs/cfs-gateway/internal/protocol/nfs3"
	"github.com/claudefs/cfs-gateway/internal/protocol/oncrpc"
)

// runServe serves the gateway's NFSv3 server until interrupted.
func runServe(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(errOut)
	cfgPath := fs.String("config", "", "configuration file (default: the built-in defaults)")
	data := fs.String("data", "", "data directory (overrides data_dir)")
	listen := fs.String("listen", "127.0.0.1:2049", "NFS address")
	mountListen := fs.String("mount-listen", "127.0.0.1:20048", "MOUNT address")
	nlmListen := fs.String("nlm-listen", "127.0.0.1:32803", "NLM address")
	pprofAddr := fs.String("pprof", "", "serve net/http/pprof on this address while serving (for profiling)")
	rootSquash := fs.Bool("root-squash", false, "keep root_squash of the exports (off by default, so that a load client acting as root can write to the export root)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := config.Default()
	if *cfgPath != "" {
		var err error
		if cfg, err = config.Load(*cfgPath); err != nil {
			return err
		}
	}
	if *data != "" {
		cfg.DataDir = *data
	}
	if *pprofAddr != "" {
		go func() {
			if err := http.ListenAndServe(*pprofAddr, nil); err != nil {
				fmt.Fprintln(errOut, "pprof listener:", err)
			}
		}()
	}
	log := slog.New(slog.NewTextHandler(errOut, &slog.HandlerOptions{Level: slog.LevelWarn}))
	g, err := gateway.Open(ctx, cfg, gateway.Options{Logger: log})
	if err != nil {
		return err
	}
	defer g.Close(context.Background())
	exports := make([]nfs3.Export, 0, len(cfg.NFS.Exports))
	for _, e := range cfg.NFS.Exports {
		exports = append(exports, nfs3.Export{
			Name: e.Name, Path: e.Path, ReadOnly: e.ReadOnly, RootSquash: e.RootSquash && *rootSquash, AllSquash: e.AllSquash,
			AnonUID: e.AnonUID, AnonGID: e.AnonGID, AllowedClients: e.AllowedClients, Sec: flavors(e.Sec),
		})
	}
	srv, err := nfs3.New(nfs3.Config{
		FS: g.FS(), Exports: exports, Logger: log,
		MaxTransfer: cfg.NFS.MaxTransferBytes(), MaxRecordSize: int(cfg.NFS.MaxRecordBytes),
		MaxOutstanding: cfg.NFS.MaxOutstandingPerConn,
	})
	if err != nil {
		return err
	}
	b, err := srv.ListenAndServe(nfs3.Addrs{NFS: *listen, Mount: *mountListen, NLM: *nlmListen})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "serving NFSv3 on %s (MOUNT %s, NLM %s), data in %s\n", b.NFS, b.Mount, b.NLM, cfg.DataDir)
	<-ctx.Done()
	stop, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return srv.Shutdown(stop)
}

func flavors(sec []config.NFSAuth) []oncrpc.AuthFlavor {
	var out []oncrpc.AuthFlavor
	for _, s := range sec {
		switch s {
		case config.AuthSys:
			out = append(out, oncrpc.AuthSys)
		case config.AuthNone:
			out = append(out, oncrpc.AuthNone)
		}
	}
	return out
}
