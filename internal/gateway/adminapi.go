package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/claudefs/cfs-gateway/internal/admin"
	"github.com/claudefs/cfs-gateway/internal/core"
	"github.com/claudefs/cfs-gateway/internal/core/quota"
)

// The operator's API: the same operations the CLI runs on a stopped
// gateway's store, served by a running gateway (whose embedded store is
// locked by it) so that the CLI works either way.
//
//	GET    /admin/users                 list users
//	POST   /admin/users                 add a user (UserRequest)
//	DELETE /admin/users/{name}          delete a user
//	POST   /admin/users/{name}/password set the SMB password ({"password": ...})
//	GET    /admin/quota?kind=user&id=N  one id's usage and limits
//	PUT    /admin/quota                 set limits (QuotaRequest)
//	GET    /admin/quota/report          every id with usage or limits
//	POST   /admin/fsck[?skip_blocks=1]  check; streams progress, ends with the report
//	POST   /admin/gc[?safety_window=1h] collect; streams progress, ends with the report

// UserRequest adds a user.
type UserRequest struct {
	User     core.User `json:"user"`
	Password string    `json:"password,omitempty"`
}

// QuotaRequest sets the limits of one user or group.
type QuotaRequest struct {
	Group  bool         `json:"group"`
	ID     uint32       `json:"id"`
	Limits quota.Limits `json:"limits"`
}

// ProgressLine is one line of a streamed long operation: progress lines
// have Stage set; the last line has Result or Error.
type ProgressLine struct {
	Stage  string          `json:"stage,omitempty"`
	Done   int             `json:"done,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  string          `json:"error,omitempty"`
}

func (g *Gateway) registerAdmin(srv *admin.Server) {
	fs := g.fs
	srv.Handle("GET /admin/users", jsonHandler(func(r *http.Request) (any, error) {
		return fs.ListUsers(r.Context())
	}))
	srv.Handle("POST /admin/users", jsonHandler(func(r *http.Request) (any, error) {
		var req UserRequest
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		if err := fs.AddUser(r.Context(), req.User, req.Password); err != nil {
			return nil, err
		}
		return fs.LookupUser(r.Context(), req.User.Name)
	}))
	srv.Handle("DELETE /admin/users/{name}", jsonHandler(func(r *http.Request) (any, error) {
		return map[string]string{"deleted": r.PathValue("name")}, fs.DeleteUser(r.Context(), r.PathValue("name"))
	}))
	srv.Handle("POST /admin/users/{name}/password", jsonHandler(func(r *http.Request) (any, error) {
		var req struct {
			Password string `json:"password"`
		}
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		return map[string]string{"updated": r.PathValue("name")}, fs.SetPassword(r.Context(), r.PathValue("name"), req.Password)
	}))
	srv.Handle("GET /admin/quota", jsonHandler(func(r *http.Request) (any, error) {
		id, err := strconv.ParseUint(r.URL.Query().Get("id"), 10, 32)
		if err != nil {
			return nil, badRequest("id must be a number")
		}
		return fs.GetQuota(r.Context(), r.URL.Query().Get("kind") == "group", uint32(id))
	}))
	srv.Handle("PUT /admin/quota", jsonHandler(func(r *http.Request) (any, error) {
		var req QuotaRequest
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		if err := req.Limits.Validate(); err != nil {
			return nil, badRequest(err.Error())
		}
		if err := fs.SetQuota(r.Context(), req.Group, req.ID, req.Limits); err != nil {
			return nil, err
		}
		return fs.GetQuota(r.Context(), req.Group, req.ID)
	}))
	srv.Handle("GET /admin/quota/report", jsonHandler(func(r *http.Request) (any, error) {
		return fs.QuotaReport(r.Context())
	}))
	srv.Handle("POST /admin/fsck", streamHandler(func(ctx context.Context, r *http.Request, p core.Progress) (any, error) {
		return fs.Fsck(ctx, core.FsckOptions{SkipBlocks: r.URL.Query().Get("skip_blocks") == "1", Progress: p})
	}))
	srv.Handle("POST /admin/gc", streamHandler(func(ctx context.Context, r *http.Request, p core.Progress) (any, error) {
		window := g.Config().Data.GCSafetyWindow()
		if v := r.URL.Query().Get("safety_window"); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				return nil, badRequest("safety_window: " + err.Error())
			}
			window = d
		}
		return fs.GC(ctx, core.GCOptions{SafetyWindow: window, Progress: p})
	}))
}

type requestError struct{ msg string }

func (e *requestError) Error() string { return e.msg }

func badRequest(msg string) error { return &requestError{msg} }

func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("request body: " + err.Error())
	}
	return nil
}

func jsonHandler(fn func(r *http.Request) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := fn(r)
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			status := http.StatusInternalServerError
			var re *requestError
			switch {
			case errors.As(err, &re):
				status = http.StatusBadRequest
			case errors.Is(err, core.ErrNoUser):
				status = http.StatusNotFound
			case errors.Is(err, core.ErrUserExists):
				status = http.StatusConflict
			}
			w.WriteHeader(status)
			json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			return
		}
		json.NewEncoder(w).Encode(v)
	})
}

// streamHandler runs a long operation, streaming one JSON progress line at
// a time so that the operator sees it move, then the result.
func streamHandler(fn func(ctx context.Context, r *http.Request, p core.Progress) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		enc := json.NewEncoder(w)
		flusher, _ := w.(http.Flusher)
		last := time.Time{}
		progress := func(stage string, done int) {
			if time.Since(last) < 500*time.Millisecond {
				return
			}
			last = time.Now()
			enc.Encode(ProgressLine{Stage: stage, Done: done})
			if flusher != nil {
				flusher.Flush()
			}
		}
		v, err := fn(r.Context(), r, progress)
		if err != nil {
			enc.Encode(ProgressLine{Error: err.Error()})
			return
		}
		b, err := json.Marshal(v)
		if err != nil {
			enc.Encode(ProgressLine{Error: fmt.Sprintf("encoding the result: %v", err)})
			return
		}
		enc.Encode(ProgressLine{Result: b})
	})
}
