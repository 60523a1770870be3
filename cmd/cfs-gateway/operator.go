package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/claudefs/cfs-gateway/internal/config"
	"github.com/claudefs/cfs-gateway/internal/core"
	"github.com/claudefs/cfs-gateway/internal/core/quota"
	"github.com/claudefs/cfs-gateway/internal/gateway"
)

// operator runs the operator's commands either on the store directly (no
// gateway running) or through a running gateway's admin API, which holds
// the embedded store locked.
type operator interface {
	AddUser(ctx context.Context, u core.User, password string) (*core.User, error)
	ListUsers(ctx context.Context) ([]core.User, error)
	DeleteUser(ctx context.Context, name string) error
	SetPassword(ctx context.Context, name, password string) error
	GetQuota(ctx context.Context, group bool, id uint32) (core.QuotaEntry, error)
	SetQuota(ctx context.Context, group bool, id uint32, lim quota.Limits) (core.QuotaEntry, error)
	QuotaReport(ctx context.Context) ([]core.QuotaEntry, error)
	Fsck(ctx context.Context, opts core.FsckOptions) (*core.FsckReport, error)
	GC(ctx context.Context, opts core.GCOptions) (*core.GCReport, error)
	Close() error
}

// openOperator opens the store the configuration names, or reaches the
// gateway that holds it.
func openOperator(ctx context.Context, cfgPath string, errOut io.Writer) (operator, *config.Config, error) {
	cfg, _, err := config.LoadDefaultOrFile(cfgPath)
	if err != nil {
		return nil, nil, err
	}
	g, err := gateway.Open(ctx, cfg, gateway.Options{Tool: true})
	if err == nil {
		return &local{g: g, fs: g.FS()}, cfg, nil
	}
	if !errors.Is(err, gateway.ErrInUse) {
		return nil, nil, err
	}
	if !cfg.Admin.Enabled {
		return nil, nil, fmt.Errorf("%w; the gateway that holds it has admin.enabled false, so stop it or enable the admin API", err)
	}
	addr := cfg.Admin.Listen
	if host, port, err := net.SplitHostPort(addr); err == nil && (host == "" || host == "0.0.0.0" || host == "::") {
		addr = net.JoinHostPort("127.0.0.1", port)
	}
	fmt.Fprintf(errOut, "the metadata store is in use by a running gateway; using its admin API at %s\n", addr)
	return &remote{base: "http://" + addr, client: &http.Client{}}, cfg, nil
}

// local runs operations in this process.
type local struct {
	g  *gateway.Gateway
	fs *core.FS
}

func (l *local) AddUser(ctx context.Context, u core.User, pw string) (*core.User, error) {
	if err := l.fs.AddUser(ctx, u, pw); err != nil {
		return nil, err
	}
	return l.fs.LookupUser(ctx, u.Name)
}
func (l *local) ListUsers(ctx context.Context) ([]core.User, error) { return l.fs.ListUsers(ctx) }
func (l *local) DeleteUser(ctx context.Context, name string) error  { return l.fs.DeleteUser(ctx, name) }
func (l *local) SetPassword(ctx context.Context, name, pw string) error {
	return l.fs.SetPassword(ctx, name, pw)
}
func (l *local) GetQuota(ctx context.Context, group bool, id uint32) (core.QuotaEntry, error) {
	return l.fs.GetQuota(ctx, group, id)
}
func (l *local) SetQuota(ctx context.Context, group bool, id uint32, lim quota.Limits) (core.QuotaEntry, error) {
	if err := l.fs.SetQuota(ctx, group, id, lim); err != nil {
		return core.QuotaEntry{}, err
	}
	return l.fs.GetQuota(ctx, group, id)
}
func (l *local) QuotaReport(ctx context.Context) ([]core.QuotaEntry, error) {
	return l.fs.QuotaReport(ctx)
}
func (l *local) Fsck(ctx context.Context, o core.FsckOptions) (*core.FsckReport, error) {
	return l.fs.Fsck(ctx, o)
}
func (l *local) GC(ctx context.Context, o core.GCOptions) (*core.GCReport, error) {
	return l.fs.GC(ctx, o)
}
func (l *local) Close() error { return l.g.Close(context.Background()) }

// remote runs operations through a running gateway's admin API.
type remote struct {
	base   string
	client *http.Client
}

func (r *remote) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.base+path, rd)
	if err != nil {
		return err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return fmt.Errorf("reaching the gateway's admin API: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		return fmt.Errorf("admin API answered %s", resp.Status)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}

// stream runs a streamed long operation, passing progress on.
func (r *remote) stream(ctx context.Context, path string, progress core.Progress, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.base+path, nil)
	if err != nil {
		return err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return fmt.Errorf("reaching the gateway's admin API: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("admin API answered %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 256<<20)
	for sc.Scan() {
		var line gateway.ProgressLine
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return fmt.Errorf("admin API sent an unreadable line: %w", err)
		}
		switch {
		case line.Error != "":
			return errors.New(line.Error)
		case line.Result != nil:
			return json.Unmarshal(line.Result, out)
		case progress != nil:
			progress(line.Stage, line.Done)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return errors.New("the gateway closed the connection before sending the result")
}

func (r *remote) AddUser(ctx context.Context, u core.User, pw string) (*core.User, error) {
	var out core.User
	err := r.do(ctx, http.MethodPost, "/admin/users", gateway.UserRequest{User: u, Password: pw}, &out)
	return &out, err
}
func (r *remote) ListUsers(ctx context.Context) ([]core.User, error) {
	var out []core.User
	return out, r.do(ctx, http.MethodGet, "/admin/users", nil, &out)
}
func (r *remote) DeleteUser(ctx context.Context, name string) error {
	return r.do(ctx, http.MethodDelete, "/admin/users/"+url.PathEscape(name), nil, nil)
}
func (r *remote) SetPassword(ctx context.Context, name, pw string) error {
	return r.do(ctx, http.MethodPost, "/admin/users/"+url.PathEscape(name)+"/password", map[string]string{"password": pw}, nil)
}
func (r *remote) GetQuota(ctx context.Context, group bool, id uint32) (core.QuotaEntry, error) {
	kind := "user"
	if group {
		kind = "group"
	}
	var out core.QuotaEntry
	return out, r.do(ctx, http.MethodGet, "/admin/quota?kind="+kind+"&id="+strconv.FormatUint(uint64(id), 10), nil, &out)
}
func (r *remote) SetQuota(ctx context.Context, group bool, id uint32, lim quota.Limits) (core.QuotaEntry, error) {
	var out core.QuotaEntry
	return out, r.do(ctx, http.MethodPut, "/admin/quota", gateway.QuotaRequest{Group: group, ID: id, Limits: lim}, &out)
}
func (r *remote) QuotaReport(ctx context.Context) ([]core.QuotaEntry, error) {
	var out []core.QuotaEntry
	return out, r.do(ctx, http.MethodGet, "/admin/quota/report", nil, &out)
}
func (r *remote) Fsck(ctx context.Context, o core.FsckOptions) (*core.FsckReport, error) {
	path := "/admin/fsck"
	if o.SkipBlocks {
		path += "?skip_blocks=1"
	}
	var out core.FsckReport
	return &out, r.stream(ctx, path, o.Progress, &out)
}
func (r *remote) GC(ctx context.Context, o core.GCOptions) (*core.GCReport, error) {
	path := "/admin/gc?safety_window=" + url.QueryEscape(o.SafetyWindow.String())
	var out core.GCReport
	return &out, r.stream(ctx, path, o.Progress, &out)
}
func (r *remote) Close() error { return nil }

// progressPrinter prints a long operation's progress to w, at most twice a
// second.
func progressPrinter(w io.Writer, what string) core.Progress {
	var last time.Time
	return func(stage string, done int) {
		if time.Since(last) < 500*time.Millisecond {
			return
		}
		last = time.Now()
		fmt.Fprintf(w, "%s: %s: %d\n", what, stage, done)
	}
}
