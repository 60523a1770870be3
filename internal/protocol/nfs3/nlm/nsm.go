package nlm

import (
	"context"
	"io"
	"time"

	"github.com/claudefs/cfs-gateway/internal/protocol/oncrpc"
	"github.com/claudefs/cfs-gateway/internal/protocol/xdr/nsmv1"
)

var nsmProcNames = [nsmv1.SM_NOTIFY + 1]string{"NULL", "STAT", "MON", "UNMON", "UNMON_ALL", "SIMU_CRASH", "NOTIFY"}

// maxMonitors bounds the SM_MON registrations kept.
const maxMonitors = 1 << 16

// serveNSM is the oncrpc handler of the status monitor. Its one effect on
// locking is SM_NOTIFY: the named host restarted, so every lock, queued
// request and share it held is released. SM_MON and SM_UNMON are kept as
// bookkeeping (the gateway is its own status monitor and needs no
// callback), SM_STAT reports the state number.
func (s *Service) serveNSM(ctx context.Context, call *oncrpc.Call) (io.WriterTo, error) {
	if call.Proc >= uint32(len(nsmProcNames)) {
		return nil, oncrpc.ProcUnavail
	}
	start := time.Now()
	res, err := s.nsmProc(call)
	status := "ok"
	if err != nil {
		status = "GARBAGE_ARGS"
	}
	s.ops["SM_"+nsmProcNames[call.Proc]].Observe(start, status, 0, 0)
	return res, err
}

func (s *Service) nsmProc(call *oncrpc.Call) (io.WriterTo, error) {
	switch call.Proc {
	case nsmv1.SM_NULL:
		return nil, nil
	case nsmv1.SM_STAT:
		var args nsmv1.SmName
		if err := call.DecodeArgs(&args); err != nil {
			return nil, err
		}
		return &nsmv1.SmStatRes{ResStat: nsmv1.STAT_SUCC, State: s.State()}, nil
	case nsmv1.SM_MON:
		var args nsmv1.Mon
		if err := call.DecodeArgs(&args); err != nil {
			return nil, err
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		k := monitorKeyOf(&args.MonId)
		if _, ok := s.monitors[k]; !ok && len(s.monitors) >= maxMonitors {
			return &nsmv1.SmStatRes{ResStat: nsmv1.STAT_FAIL, State: s.state}, nil
		}
		s.monitors[k] = args
		return &nsmv1.SmStatRes{ResStat: nsmv1.STAT_SUCC, State: s.state}, nil
	case nsmv1.SM_UNMON:
		var args nsmv1.MonId
		if err := call.DecodeArgs(&args); err != nil {
			return nil, err
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.monitors, monitorKeyOf(&args))
		return &nsmv1.SmStat{State: s.state}, nil
	case nsmv1.SM_UNMON_ALL:
		var args nsmv1.MyId
		if err := call.DecodeArgs(&args); err != nil {
			return nil, err
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		for k := range s.monitors {
			if k.myName == args.MyName && k.prog == args.MyProg && k.vers == args.MyVers && k.procID == args.MyProc {
				delete(s.monitors, k)
			}
		}
		return &nsmv1.SmStat{State: s.state}, nil
	case nsmv1.SM_SIMU_CRASH:
		s.mu.Lock()
		s.state += 2
		s.mu.Unlock()
		return nil, nil
	case nsmv1.SM_NOTIFY:
		var args nsmv1.StatChge
		if err := call.DecodeArgs(&args); err != nil {
			return nil, err
		}
		s.releaseHost(args.MonName, remoteAddr(call))
		return nil, nil
	}
	return nil, oncrpc.ProcUnavail
}

func monitorKeyOf(m *nsmv1.MonId) monitorKey {
	return monitorKey{monName: m.MonName, myName: m.MyId.MyName, prog: m.MyId.MyProg, vers: m.MyId.MyVers, procID: m.MyId.MyProc}
}

// Monitors is the number of SM_MON registrations held.
func (s *Service) Monitors() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.monitors)
}
