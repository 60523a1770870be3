package nfs3

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/claudefs/cfs-gateway/internal/core"
	"github.com/claudefs/cfs-gateway/internal/core/lock"
	"github.com/claudefs/cfs-gateway/internal/metrics"
	"github.com/claudefs/cfs-gateway/internal/protocol/nfs3/nlm"
	"github.com/claudefs/cfs-gateway/internal/protocol/oncrpc"
	"github.com/claudefs/cfs-gateway/internal/protocol/portmap"
	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/mountv3"
	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/nfsv3"
)

// Defaults of Config.
const (
	DefaultMaxTransfer    = 1 << 20
	DefaultMaxOutstanding = 64
	// headerAllowance is the room kept in an RPC record around the data of
	// a READ or WRITE for the RPC and NFS headers.
	headerAllowance = 64 << 10
)

// Config configures a Server. Zero values take the documented defaults.
type Config struct {
	// FS is the filesystem served (required).
	FS *core.FS
	// Exports are the exported directories (at least one).
	Exports []Export
	// Metrics receives the request and connection metrics; nil records
	// nothing.
	Metrics *metrics.Metrics
	// Logger receives the server's logs; slog.Default() when nil.
	Logger *slog.Logger
	// MaxTransfer is the largest READ or WRITE payload, advertised by
	// FSINFO as rtmax and wtmax [1 MiB].
	MaxTransfer int64
	// MaxRecordSize caps one RPC record [MaxTransfer + 64 KiB].
	MaxRecordSize int
	// MaxOutstanding caps the calls one connection may have in progress
	// [64].
	MaxOutstanding int
	// Resolver resolves the host names of allowed_clients
	// [net.DefaultResolver].
	Resolver Resolver
	// NLMDial connects to a client's lock manager for GRANTED callbacks;
	// nil asks the client's port mapper (see nlm.Config.Dial).
	NLMDial nlm.DialFunc
}

// Server is the NFSv3 server with its MOUNT, NLM and NSM companions.
type Server struct {
	fs          *core.FS
	fsid        uint64
	log         *slog.Logger
	maxTransfer uint32
	exports     []*export
	byID        map[uint32]*export
	mounts      mountTable
	locks       *nlm.Service

	nfsOps   [nfsProcCount]*metrics.OpMetrics
	mountOps [mountProcCount]*metrics.OpMetrics

	// rpc serves NFS and MOUNT on the NFS port; mountRPC MOUNT alone on
	// its own port; nlmRPC NLM and NSM; pmapRPC the port mapper.
	rpc, mountRPC, nlmRPC, pmapRPC *oncrpc.Server
	pmap                           *portmap.Table

	serving sync.WaitGroup
}

// New builds a server for cfg. It fails on an invalid export.
func New(cfg Config) (*Server, error) {
	if cfg.FS == nil {
		return nil, errors.New("nfs3: Config.FS is required")
	}
	if len(cfg.Exports) == 0 {
		return nil, errors.New("nfs3: at least one export is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxTransfer <= 0 {
		cfg.MaxTransfer = DefaultMaxTransfer
	}
	cfg.MaxTransfer = max(min(cfg.MaxTransfer, 64<<20)&^4095, 4096)
	if cfg.MaxRecordSize <= 0 {
		cfg.MaxRecordSize = int(cfg.MaxTransfer) + headerAllowance
	}
	if cfg.MaxOutstanding <= 0 {
		cfg.MaxOutstanding = DefaultMaxOutstanding
	}
	s := &Server{
		fs:          cfg.FS,
		fsid:        cfg.FS.FSID(),
		log:         cfg.Logger,
		maxTransfer: uint32(cfg.MaxTransfer),
		byID:        map[uint32]*export{},
		mounts:      mountTable{byHost: map[string]map[string]struct{}{}},
		pmap:        portmap.NewTable(),
	}
	for i, e := range cfg.Exports {
		ex, err := newExport(e, cfg.Resolver)
		if err != nil {
			return nil, fmt.Errorf("nfs3: export %d: %w", i, err)
		}
		if prev, dup := s.byID[ex.id]; dup {
			return nil, fmt.Errorf("nfs3: exports %s and %s have the same handle id; rename one", prev.Name, ex.Name)
		}
		s.byID[ex.id] = ex
		s.exports = append(s.exports, ex)
	}
	for p := range s.nfsOps {
		s.nfsOps[p] = cfg.Metrics.Op("nfs3", nfsProcNames[p])
	}
	for p := range s.mountOps {
		s.mountOps[p] = cfg.Metrics.Op("mount", mountProcNames[p])
	}
	s.locks = nlm.New(nlm.Config{
		Locks:   cfg.FS.Locks(),
		Resolve: s.lockFile,
		Logger:  cfg.Logger,
		Metrics: cfg.Metrics,
		Dial:    cfg.NLMDial,
	})

	rpcCfg := oncrpc.Config{
		Logger:         cfg.Logger,
		MaxRecordSize:  cfg.MaxRecordSize,
		MaxOutstanding: cfg.MaxOutstanding,
	}
	nfsCfg := rpcCfg
	if cfg.Metrics != nil {
		nfsCfg.ConnObserver = connGauge{cfg.Metrics}
	}
	s.rpc = oncrpc.NewServer(nfsCfg)
	if err := s.Register(s.rpc); err != nil {
		return nil, err
	}
	small := rpcCfg
	small.MaxRecordSize = 64 << 10
	s.mountRPC = oncrpc.NewServer(small)
	if err := s.registerMount(s.mountRPC); err != nil {
		return nil, err
	}
	s.nlmRPC = oncrpc.NewServer(small)
	if err := s.locks.Register(s.nlmRPC); err != nil {
		return nil, err
	}
	s.pmapRPC = oncrpc.NewServer(small)
	if err := portmap.NewService(s.pmap, cfg.Logger).Register(s.pmapRPC); err != nil {
		return nil, err
	}
	return s, nil
}

// connGauge keeps gateway_active_connections{protocol="nfs3"} current.
type connGauge struct{ m *metrics.Metrics }

func (g connGauge) ConnOpened(string, net.Addr, net.Addr) { g.m.Connections("nfs3").Inc() }
func (g connGauge) ConnClosed(string, net.Addr, net.Addr, error) {
	g.m.Connections("nfs3").Dec()
}

// nonIdempotent are the NFS procedures whose replies the duplicate request
// cache keeps, so that a retransmitted REMOVE does not answer NOENT.
func nonIdempotent(vers, proc uint32) bool {
	switch proc {
	case nfsv3.NFSPROC3_SETATTR, nfsv3.NFSPROC3_CREATE, nfsv3.NFSPROC3_MKDIR, nfsv3.NFSPROC3_SYMLINK,
		nfsv3.NFSPROC3_MKNOD, nfsv3.NFSPROC3_REMOVE, nfsv3.NFSPROC3_RMDIR, nfsv3.NFSPROC3_RENAME,
		nfsv3.NFSPROC3_LINK:
		return true
	}
	return false
}

// quick names the calls answered from the attribute and lookup caches or
// the page cache in the common case (oncrpc.Quick): served by the
// connection's reader itself when they are the connection's only call. A
// large READ is not: its copy and checksum would hold up the reading of
// the calls that follow it.
func quick(vers, proc uint32, args []byte) bool {
	switch proc {
	case nfsv3.NFSPROC3_NULL, nfsv3.NFSPROC3_GETATTR, nfsv3.NFSPROC3_ACCESS, nfsv3.NFSPROC3_LOOKUP,
		nfsv3.NFSPROC3_FSINFO, nfsv3.NFSPROC3_PATHCONF:
		return true
	case nfsv3.NFSPROC3_READ:
		a, err := decodeRead(&oncrpc.Call{Args: args})
		return err == nil && a.Count <= quickReadMax
	}
	return false
}

// quickReadMax is the largest READ served as a quick call.
const quickReadMax = 64 << 10

// Register serves NFS version 3 and MOUNT version 3 on srv, for a caller
// that owns the RPC server (one port shared with NFSv4, say). Credentials
// are checked per export, so the programs accept AUTH_NONE and AUTH_SYS.
func (s *Server) Register(srv *oncrpc.Server) error {
	if err := srv.Register(nfsv3.NFS_PROGRAM, nfsv3.NFS_V3, nfsv3.NFS_V3, oncrpc.HandlerFunc(s.serveNFS),
		oncrpc.NonIdempotent(nonIdempotent), oncrpc.Quick(quick)); err != nil {
		return fmt.Errorf("nfs3: %w", err)
	}
	return s.registerMount(srv)
}

func (s *Server) registerMount(srv *oncrpc.Server) error {
	if err := srv.Register(mountv3.MOUNT_PROGRAM, mountv3.MOUNT_V3, mountv3.MOUNT_V3, oncrpc.HandlerFunc(s.serveMount)); err != nil {
		return fmt.Errorf("nfs3: %w", err)
	}
	return nil
}

// RPCServer is the RPC server of the NFS port. Another version of the NFS
// program (NFSv4) may register on it to share the port; its connections
// then count in gateway_active_connections{protocol="nfs3"} too.
func (s *Server) RPCServer() *oncrpc.Server { return s.rpc }

// Serve serves NFS and MOUNT on l until Shutdown or Close.
func (s *Server) Serve(l net.Listener) error { return s.rpc.Serve(l) }

// ServeMount serves MOUNT on l.
func (s *Server) ServeMount(l net.Listener) error { return s.mountRPC.Serve(l) }

// ServeMountPacket serves MOUNT over UDP on pc.
func (s *Server) ServeMountPacket(pc net.PacketConn) error { return s.mountRPC.ServePacket(pc) }

// ServeNLM serves NLM and NSM on l.
func (s *Server) ServeNLM(l net.Listener) error { return s.nlmRPC.Serve(l) }

// ServeNLMPacket serves NLM and NSM over UDP on pc; rpc.statd sends its
// reboot notifications over UDP.
func (s *Server) ServeNLMPacket(pc net.PacketConn) error { return s.nlmRPC.ServePacket(pc) }

// ServePortmap serves the port mapper on l. Its table lists what
// ListenAndServe bound; callers of the Serve methods fill it with
// SetPortmap.
func (s *Server) ServePortmap(l net.Listener) error { return s.pmapRPC.Serve(l) }

// ServePortmapPacket serves the port mapper over UDP on pc.
func (s *Server) ServePortmapPacket(pc net.PacketConn) error { return s.pmapRPC.ServePacket(pc) }

// Ports are the ports the port mapper announces; zero leaves a service out.
type Ports struct {
	NFS, Mount, NLM uint16
	// UDP says that MOUNT and NLM/NSM are also served over UDP.
	UDP bool
}

// SetPortmap makes the built-in port mapper announce p.
func (s *Server) SetPortmap(p Ports) {
	netids := []string{portmap.NetidTCP}
	if p.UDP {
		netids = append(netids, portmap.NetidUDP)
	}
	if p.NFS != 0 {
		s.pmap.SetService(nfsv3.NFS_PROGRAM, []uint32{nfsv3.NFS_V3}, p.NFS, portmap.NetidTCP)
	}
	if mount := p.Mount; mount != 0 {
		s.pmap.SetService(mountv3.MOUNT_PROGRAM, []uint32{mountv3.MOUNT_V3}, mount, netids...)
	} else if p.NFS != 0 {
		s.pmap.SetService(mountv3.MOUNT_PROGRAM, []uint32{mountv3.MOUNT_V3}, p.NFS, portmap.NetidTCP)
	}
	if p.NLM != 0 {
		s.pmap.SetService(nlm.Program, []uint32{nlm.Version}, p.NLM, netids...)
		s.pmap.SetService(nlm.NSMProgram, []uint32{nlm.NSMVersion}, p.NLM, netids...)
	}
}

// Shutdown stops every listener, lets calls in progress finish (until ctx
// ends), and stops the lock manager's callbacks.
func (s *Server) Shutdown(ctx context.Context) error {
	var errs []error
	for _, srv := range []*oncrpc.Server{s.rpc, s.mountRPC, s.nlmRPC, s.pmapRPC} {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	s.locks.Close()
	s.serving.Wait()
	return errors.Join(errs...)
}

// Close stops everything at once.
func (s *Server) Close() error {
	for _, srv := range []*oncrpc.Server{s.rpc, s.mountRPC, s.nlmRPC, s.pmapRPC} {
		srv.Close()
	}
	s.locks.Close()
	return nil
}

// lockFile resolves an NLM file handle for the lock manager: the handle
// must be valid and the client allowed by the handle's export.
func (s *Server) lockFile(ctx context.Context, call *oncrpc.Call, fh []byte) (lock.FileID, error) {
	h, err := decodeHandle(fh)
	if err != nil {
		return 0, nlm.ErrStale
	}
	e := s.byID[h.export]
	if e == nil || h.fsid != s.fsid {
		return 0, nlm.ErrStale
	}
	if !e.clients.allowed(ctx, remoteAddr(call)) {
		return 0, nlm.ErrDenied
	}
	if _, err := s.fs.GetAttrHandle(ctx, core.Handle{Ino: h.ino, Gen: h.gen}); err != nil {
		if Status(err) == nfsv3.NFS3ERR_STALE {
			return 0, nlm.ErrStale
		}
		return 0, err
	}
	return lock.FileID(h.ino), nil
}
