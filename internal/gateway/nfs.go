package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/claudefs/cfs-gateway/internal/admin"
	"github.com/claudefs/cfs-gateway/internal/config"
	"github.com/claudefs/cfs-gateway/internal/protocol/nfs3"
	"github.com/claudefs/cfs-gateway/internal/protocol/oncrpc"
)

// nfsListeners names each NFSv3 service's listener for logs, errors and the
// health report, with the configuration key of its address.
var nfsListeners = map[string]struct{ name, key string }{
	nfs3.ServiceNFS:     {"the NFS server", "nfs.listen"},
	nfs3.ServiceMount:   {"the MOUNT protocol", "nfs.mount_listen"},
	nfs3.ServiceNLM:     {"the NLM lock manager", "nfs.nlm_listen"},
	nfs3.ServicePortmap: {"the portmapper", "nfs.portmap.listen"},
}

// nfsExports converts the configured exports.
func nfsExports(in []config.Export) []nfs3.Export {
	out := make([]nfs3.Export, 0, len(in))
	for _, e := range in {
		x := nfs3.Export{
			Name:           e.Name,
			Path:           e.Path,
			ReadOnly:       e.ReadOnly,
			RootSquash:     e.RootSquash,
			AllSquash:      e.AllSquash,
			AnonUID:        e.AnonUID,
			AnonGID:        e.AnonGID,
			AllowedClients: e.AllowedClients,
		}
		for _, s := range e.Sec {
			switch s {
			case config.AuthSys:
				x.Sec = append(x.Sec, oncrpc.AuthSys)
			case config.AuthNone:
				x.Sec = append(x.Sec, oncrpc.AuthNone)
			}
		}
		out = append(out, x)
	}
	return out
}

// startNFS builds the NFSv3 server (with MOUNT, NLM, NSM and, when
// enabled, the portmapper) from the configuration and binds nfs.listen,
// nfs.mount_listen, nfs.nlm_listen and nfs.portmap.listen. A port that
// cannot be bound is a one-line error naming its configuration key, and
// nothing stays bound.
func startNFS(g *Gateway, cfg *config.Config) (services []Service, stop func(context.Context) error, err error) {
	srv, err := nfs3.New(nfs3.Config{
		FS:             g.fs,
		Exports:        nfsExports(cfg.NFS.Exports),
		Metrics:        g.metrics,
		Logger:         g.log,
		MaxTransfer:    cfg.NFS.MaxTransferBytes(),
		MaxRecordSize:  int(cfg.NFS.MaxRecordBytes),
		MaxOutstanding: cfg.NFS.MaxOutstandingPerConn,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("the NFS server cannot start: %w; check nfs.exports in the configuration", err)
	}
	addrs := nfs3.Addrs{NFS: cfg.NFS.Listen, Mount: cfg.NFS.MountListen, NLM: cfg.NFS.NLMListen}
	if cfg.NFS.Portmap.Enabled {
		addrs.Portmap = cfg.NFS.Portmap.Listen
	}
	bound, err := srv.ListenAndServe(addrs)
	if err != nil {
		srv.Close()
		var le *nfs3.ListenError
		if errors.As(err, &le) {
			l := nfsListeners[le.Service]
			return nil, nil, listenError(l.name, l.key, le.Addr, le.Err)
		}
		return nil, nil, err
	}
	for _, b := range []struct {
		service string
		addr    net.Addr
	}{
		{nfs3.ServiceNFS, bound.NFS}, {nfs3.ServiceMount, bound.Mount},
		{nfs3.ServiceNLM, bound.NLM}, {nfs3.ServicePortmap, bound.Portmap},
	} {
		if b.addr == nil {
			continue
		}
		l := nfsListeners[b.service]
		name := b.service // nfs, mount, nlm, portmap
		services = append(services, Service{Name: name, Key: l.key, Addr: b.addr.String()})
		if g.health != nil {
			g.health.Add(admin.Component{Name: name + " listener", Kind: admin.KindListener, Checker: listenerCheck(b.addr.String())})
		}
	}
	g.log.Info("NFSv3 server listening", "nfs", addrString(bound.NFS), "mount", addrString(bound.Mount),
		"nlm", addrString(bound.NLM), "portmap", addrString(bound.Portmap), "exports", len(cfg.NFS.Exports))
	return services, srv.Shutdown, nil
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}
