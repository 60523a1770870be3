package s3it

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/claudefs/cfs-gateway/internal/backend/backendtest"
)

// cliTimeout bounds one run of a client; the slowest step moves 20 MiB
// over loopback, so a run that takes longer is hung.
const cliTimeout = 2 * time.Minute

// largeSize is past every client's multipart threshold as the tests
// configure them, and not a multiple of any part size, so the last part
// is short.
const largeSize = 20<<20 + 17

// cli is a command-line S3 client: how to run it against one gateway and
// how it spells each step of the scenario that exerciseCLI drives.
type cli struct {
	name string
	bin  string
	// dir is the client's private home and working directory.
	dir string
	env []string
	// common comes before every command's own arguments.
	common []string
	// partSize is the multipart part size the client was told to use.
	partSize int64
	// uploadMark appears in a sync's output once for each file it uploads.
	uploadMark string

	makeBucket   func(bucket string) []string
	removeBucket func(bucket string) []string
	listBuckets  []string
	parseBuckets func(t *testing.T, stdout string) []string
	put          func(file, bucket, key string) []string
	get          func(bucket, key, file string) []string
	list         func(bucket string) []string
	// parseList returns each listed key with its size.
	parseList  func(t *testing.T, bucket, stdout string) map[string]int64
	syncUp     func(dir, bucket, prefix string) []string
	syncDown   func(bucket, prefix, dir string) []string
	remove     func(bucket, key string) []string
	removeTree func(bucket, prefix string) []string
}

// cliEnv is the environment of a client subprocess: this process's, less
// anything that configures an S3 client or a proxy, with HOME and the XDG
// directories in dir so the user's own settings are neither read nor
// written.
func cliEnv(dir string, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch up := strings.ToUpper(k); {
		case strings.HasPrefix(up, "AWS_"), strings.HasPrefix(up, "RCLONE_"), strings.HasPrefix(up, "S3CMD"),
			strings.HasSuffix(up, "_PROXY"), strings.HasPrefix(up, "XDG_"), up == "HOME":
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "HOME="+dir, "XDG_CONFIG_HOME="+filepath.Join(dir, ".config"),
		"XDG_CACHE_HOME="+filepath.Join(dir, ".cache"), "NO_PROXY=127.0.0.1,localhost")
	return append(env, extra...)
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// cliOutput is what one run of a client printed.
type cliOutput struct {
	stdout, stderr string
	exit           int
}

// invoke runs the client with args and a deadline. A client that does not
// start or outlives the deadline fails the test; a non-zero exit is
// returned.
func (c *cli) invoke(t *testing.T, args ...string) cliOutput {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	full := append(slices.Clone(c.common), args...)
	cmd := exec.CommandContext(ctx, c.bin, full...)
	cmd.Env = c.env
	cmd.Dir = c.dir
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	out := cliOutput{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("%s %s did not finish within %v\nstdout:\n%s\nstderr:\n%s", c.name, strings.Join(args, " "), cliTimeout, out.stdout, out.stderr)
	case errors.As(err, &exit):
		out.exit = exit.ExitCode()
	case err != nil:
		t.Fatalf("starting %s: %v", c.name, err)
	}
	return out
}

// run is invoke for a command that must succeed.
func (c *cli) run(t *testing.T, args ...string) cliOutput {
	t.Helper()
	out := c.invoke(t, args...)
	if out.exit != 0 {
		t.Fatalf("%s %s exited with %d\nstdout:\n%s\nstderr:\n%s", c.name, strings.Join(args, " "), out.exit, out.stdout, out.stderr)
	}
	return out
}

// listing returns every key in bucket with its size, as the client lists
// them.
func (c *cli) listing(t *testing.T, bucket string) map[string]int64 {
	t.Helper()
	return c.parseList(t, bucket, c.run(t, c.list(bucket)...).stdout)
}

func (c *cli) buckets(t *testing.T) []string {
	t.Helper()
	return c.parseBuckets(t, c.run(t, c.listBuckets...).stdout)
}

// syncs runs a sync and returns how many files it says it uploaded.
func (c *cli) syncs(t *testing.T, dir, bucket, prefix string) int {
	t.Helper()
	out := c.run(t, c.syncUp(dir, bucket, prefix)...)
	return strings.Count(out.stdout+out.stderr, c.uploadMark)
}

func TestAWSCLI(t *testing.T) {
	bin := backendtest.FindBinary(t, "aws", "apt-get install -y awscli")
	g := start(t, false)
	dir := t.TempDir()
	config, creds := filepath.Join(dir, "config"), filepath.Join(dir, "credentials")
	// The CLI reads sizes with binary units: 8MB is 8 MiB.
	writeFile(t, config, "[default]\nregion = "+region+"\noutput = text\n"+
		"s3 =\n    multipart_threshold = 8MB\n    multipart_chunksize = 8MB\n    addressing_style = path\n")
	writeFile(t, creds, "[default]\naws_access_key_id = "+accessKey+"\naws_secret_access_key = "+secretKey+"\n")
	lsLine := regexp.MustCompile(`^\S+ \S+\s+(\d+) (.+)$`)
	c := &cli{
		name: "aws", bin: bin, dir: dir, partSize: 8 << 20, uploadMark: "upload: ",
		env: cliEnv(dir, "AWS_CONFIG_FILE="+config, "AWS_SHARED_CREDENTIALS_FILE="+creds,
			"AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=", "AWS_MAX_ATTEMPTS=1", "AWS_RETRY_MODE=standard"),
		// No retries and a short read timeout: a response the client
		// cannot read (as botocore's after an empty PUT answered without
		// 100 Continue, on a reused connection) fails the command instead
		// of being retried after a minute.
		common:       []string{"--endpoint-url", g.endpoint, "--cli-read-timeout", "20"},
		makeBucket:   func(b string) []string { return []string{"s3", "mb", "s3://" + b} },
		removeBucket: func(b string) []string { return []string{"s3", "rb", "s3://" + b} },
		listBuckets:  []string{"s3", "ls"},
		parseBuckets: func(t *testing.T, out string) []string {
			var names []string
			for _, line := range lines(out) {
				f := strings.Fields(line)
				if len(f) != 3 {
					t.Fatalf("aws s3 ls printed %q", line)
				}
				names = append(names, f[2])
			}
			return names
		},
		put: func(file, b, key string) []string {
			return []string{"s3", "cp", "--no-progress", file, "s3://" + b + "/" + key}
		},
		get: func(b, key, file string) []string {
			return []string{"s3", "cp", "--no-progress", "s3://" + b + "/" + key, file}
		},
		list: func(b string) []string { return []string{"s3", "ls", "--recursive", "s3://" + b} },
		parseList: func(t *testing.T, _, out string) map[string]int64 {
			return parseLines(t, out, lsLine)
		},
		syncUp: func(d, b, p string) []string {
			return []string{"s3", "sync", "--no-progress", "--delete", d, "s3://" + b + "/" + p}
		},
		syncDown: func(b, p, d string) []string {
			return []string{"s3", "sync", "--no-progress", "s3://" + b + "/" + p, d}
		},
		remove: func(b, key string) []string { return []string{"s3", "rm", "s3://" + b + "/" + key} },
		removeTree: func(b, p string) []string {
			return []string{"s3", "rm", "--recursive", "s3://" + b + "/" + p}
		},
	}
	t.Logf("%s", strings.TrimSpace(c.run(t, "--version").stdout))
	exerciseCLI(t, g, c)
}

func TestS3cmd(t *testing.T) {
	bin := backendtest.FindBinary(t, "s3cmd", "apt-get install -y s3cmd")
	g := start(t, false)
	dir := t.TempDir()
	config := filepath.Join(dir, "s3cfg")
	// A host_bucket without %(bucket)s makes s3cmd address buckets by path.
	writeFile(t, config, "[default]\naccess_key = "+accessKey+"\nsecret_key = "+secretKey+"\n"+
		"host_base = "+g.host+"\nhost_bucket = "+g.host+"\nbucket_location = "+region+"\n"+
		"use_https = False\nsignature_v2 = False\nprogress_meter = False\n")
	lsLine := regexp.MustCompile(`^\S+ \S+\s+(\d+)\s+s3://(.+)$`)
	c := &cli{
		name: "s3cmd", bin: bin, dir: dir, env: cliEnv(dir), partSize: 5 << 20,
		common:       []string{"-c", config, "--no-progress"},
		uploadMark:   "upload: ",
		makeBucket:   func(b string) []string { return []string{"mb", "s3://" + b} },
		removeBucket: func(b string) []string { return []string{"rb", "s3://" + b} },
		listBuckets:  []string{"ls"},
		parseBuckets: func(t *testing.T, out string) []string {
			var names []string
			for _, line := range lines(out) {
				f := strings.Fields(line)
				if len(f) != 3 || !strings.HasPrefix(f[2], "s3://") {
					t.Fatalf("s3cmd ls printed %q", line)
				}
				names = append(names, strings.TrimPrefix(f[2], "s3://"))
			}
			return names
		},
		put: func(file, b, key string) []string {
			return []string{"put", "--multipart-chunk-size-mb=5", file, "s3://" + b + "/" + key}
		},
		get:  func(b, key, file string) []string { return []string{"get", "s3://" + b + "/" + key, file} },
		list: func(b string) []string { return []string{"ls", "--recursive", "s3://" + b} },
		parseList: func(t *testing.T, b, out string) map[string]int64 {
			keys := map[string]int64{}
			for k, n := range parseLines(t, out, lsLine) {
				k, ok := strings.CutPrefix(k, b+"/")
				if !ok {
					t.Fatalf("s3cmd listed %q outside bucket %s", k, b)
				}
				keys[k] = n
			}
			return keys
		},
		syncUp: func(d, b, p string) []string {
			return []string{"sync", "--delete-removed", d + "/", "s3://" + b + "/" + p}
		},
		syncDown: func(b, p, d string) []string { return []string{"sync", "s3://" + b + "/" + p, d + "/"} },
		remove:   func(b, key string) []string { return []string{"del", "s3://" + b + "/" + key} },
		removeTree: func(b, p string) []string {
			return []string{"del", "--recursive", "--force", "s3://" + b + "/" + p}
		},
	}
	t.Logf("%s", strings.TrimSpace(c.run(t, "--version").stdout))
	exerciseCLI(t, g, c)
}

func TestRclone(t *testing.T) {
	bin := backendtest.FindBinary(t, "rclone", "apt-get install -y rclone")
	g := start(t, false)
	dir := t.TempDir()
	config := filepath.Join(dir, "rclone.conf")
	writeFile(t, config, "[gw]\ntype = s3\nprovider = Other\nenv_auth = false\n"+
		"access_key_id = "+accessKey+"\nsecret_access_key = "+secretKey+"\nregion = "+region+"\n"+
		"endpoint = "+g.endpoint+"\nforce_path_style = true\n")
	remote := func(b, key string) string { return "gw:" + b + "/" + key }
	c := &cli{
		name: "rclone", bin: bin, dir: dir, env: cliEnv(dir), partSize: 5 << 20,
		common: []string{"--config", config, "--cache-dir", filepath.Join(dir, "cache"),
			"--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M", "--retries", "1", "--low-level-retries", "1"},
		// -v makes rclone log each transfer.
		uploadMark:   ": Copied (",
		makeBucket:   func(b string) []string { return []string{"mkdir", "gw:" + b} },
		removeBucket: func(b string) []string { return []string{"rmdir", "gw:" + b} },
		listBuckets:  []string{"lsjson", "gw:"},
		parseBuckets: func(t *testing.T, out string) []string {
			var names []string
			for _, e := range parseLsjson(t, out) {
				if !e.IsDir {
					t.Fatalf("rclone listed a file %q at the top", e.Path)
				}
				names = append(names, e.Path)
			}
			return names
		},
		put:  func(file, b, key string) []string { return []string{"copyto", file, remote(b, key)} },
		get:  func(b, key, file string) []string { return []string{"copyto", remote(b, key), file} },
		list: func(b string) []string { return []string{"lsjson", "--recursive", "--files-only", "gw:" + b} },
		parseList: func(t *testing.T, _, out string) map[string]int64 {
			keys := map[string]int64{}
			for _, e := range parseLsjson(t, out) {
				keys[e.Path] = e.Size
			}
			return keys
		},
		syncUp:     func(d, b, p string) []string { return []string{"sync", "-v", d, remote(b, p)} },
		syncDown:   func(b, p, d string) []string { return []string{"sync", remote(b, p), d} },
		remove:     func(b, key string) []string { return []string{"deletefile", remote(b, key)} },
		removeTree: func(b, p string) []string { return []string{"delete", remote(b, p)} },
	}
	t.Logf("%s", lines(c.run(t, "version").stdout)[0])
	exerciseCLI(t, g, c)
}

type lsjsonEntry struct {
	Path  string
	Size  int64
	IsDir bool
}

func parseLsjson(t *testing.T, out string) []lsjsonEntry {
	t.Helper()
	var entries []lsjsonEntry
	if err := json.Unmarshal([]byte(out), &entries); err != nil {
		t.Fatalf("rclone lsjson printed %q: %v", out, err)
	}
	return entries
}

// lines returns the non-blank lines of out.
func lines(out string) []string {
	var ls []string
	for _, l := range strings.Split(out, "\n") {
		if strings.TrimSpace(l) != "" {
			ls = append(ls, strings.TrimRight(l, "\r"))
		}
	}
	return ls
}

// parseLines reads a listing whose lines match re with the size as the
// first group and the key as the second.
func parseLines(t *testing.T, out string, re *regexp.Regexp) map[string]int64 {
	t.Helper()
	keys := map[string]int64{}
	for _, l := range lines(out) {
		m := re.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("unexpected listing line %q", l)
		}
		n, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil {
			t.Fatalf("listing line %q: %v", l, err)
		}
		keys[m[2]] = n
	}
	return keys
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// writeTree writes files (slash-separated names) under dir.
func writeTree(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// readTree returns the sha256 of every regular file under dir.
func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	sums := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		sums[filepath.ToSlash(rel)] = sha256Hex(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return sums
}

func sums(files map[string][]byte) map[string]string {
	s := map[string]string{}
	for name, data := range files {
		s[name] = sha256Hex(data)
	}
	return s
}

// sizes returns files' sizes with their names under prefix.
func sizes(prefix string, files map[string][]byte) map[string]int64 {
	s := map[string]int64{}
	for name, data := range files {
		s[prefix+name] = int64(len(data))
	}
	return s
}

func union(ms ...map[string]int64) map[string]int64 {
	u := map[string]int64{}
	for _, m := range ms {
		maps.Copy(u, m)
	}
	return u
}

func wantListing(t *testing.T, c *cli, bucket, when string, want map[string]int64) {
	t.Helper()
	if got := c.listing(t, bucket); !maps.Equal(got, want) {
		t.Fatalf("%s: %s lists %v, want %v", when, c.name, got, want)
	}
}

// exerciseCLI drives one client through a bucket's life: create it,
// upload a small and a multipart object, list, download, sync a directory
// tree both ways, delete, and remove the bucket. It checks what the
// client lists and the bytes it gets back, and what the server stored
// through an independent SDK client.
func exerciseCLI(t *testing.T, g *gateway, c *cli) {
	sdk := sdkClient(t, g, true)
	bucket := "cli-" + c.name
	work := t.TempDir()

	c.run(t, c.makeBucket(bucket)...)
	if got := c.buckets(t); !slices.Equal(got, []string{bucket}) {
		t.Fatalf("%s lists buckets %v after making %s", c.name, got, bucket)
	}

	objects := []struct {
		name  string
		key   string
		data  []byte
		parts int64 // 0 for a single PUT
	}{
		{"small", "small.txt", pattern(4099, 20), 0},
		{"multipart", "big/large.bin", pattern(largeSize, 21), (largeSize + c.partSize - 1) / c.partSize},
	}
	uploaded := map[string]int64{}
	for _, o := range objects {
		t.Run("put "+o.name, func(t *testing.T) {
			file := filepath.Join(work, "up-"+o.name)
			if err := os.WriteFile(file, o.data, 0o600); err != nil {
				t.Fatal(err)
			}
			c.run(t, c.put(file, bucket, o.key)...)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			head, err := sdk.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &o.key})
			if err != nil {
				t.Fatalf("HeadObject %s after %s uploaded it: %v", o.key, c.name, err)
			}
			if n := aws.ToInt64(head.ContentLength); n != int64(len(o.data)) {
				t.Fatalf("%s stored %d bytes, want %d", o.key, n, len(o.data))
			}
			// An ETag of a multipart object is the MD5 of its parts' MD5s
			// with the number of parts after a dash.
			want := `"` + md5Hex(o.data) + `"`
			if o.parts > 0 {
				want = `"` + multipartETag(o.data, c.partSize) + `"`
			}
			if etag := aws.ToString(head.ETag); etag != want {
				t.Fatalf("%s has ETag %s, want %s (uploaded in %d parts)", o.key, etag, want, o.parts)
			}
		})
		uploaded[o.key] = int64(len(o.data))
	}
	wantListing(t, c, bucket, "after the uploads", uploaded)
	for _, o := range objects {
		t.Run("get "+o.name, func(t *testing.T) {
			file := filepath.Join(work, "down-"+o.name)
			c.run(t, c.get(bucket, o.key, file)...)
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := sha256Hex(data), sha256Hex(o.data); got != want {
				t.Fatalf("%s downloaded %d bytes with sha256 %s, want %d bytes with %s", o.key, len(data), got, len(o.data), want)
			}
		})
	}

	t.Run("sync", func(t *testing.T) {
		src := filepath.Join(work, "tree")
		tree := map[string][]byte{
			"a.txt":                pattern(100, 30),
			"sub/b.txt":            pattern(2000, 31),
			"sub/with space.txt":   pattern(10, 32),
			"sub/empty":            {},
			"sub/deeper/c.bin":     pattern(70<<10, 33),
			"sub/deeper/more/d.md": []byte("# d\n"),
		}
		writeTree(t, src, tree)
		if n := c.syncs(t, src, bucket, "tree/"); n != len(tree) {
			t.Errorf("first sync reported %d uploads, want %d", n, len(tree))
		}
		wantListing(t, c, bucket, "after the first sync", union(uploaded, sizes("tree/", tree)))
		// The listing must let the client see that nothing changed.
		if n := c.syncs(t, src, bucket, "tree/"); n != 0 {
			t.Errorf("a sync with no changes reported %d uploads", n)
		}
		dst := filepath.Join(work, "tree-back")
		if err := os.Mkdir(dst, 0o700); err != nil {
			t.Fatal(err)
		}
		c.run(t, c.syncDown(bucket, "tree/", dst)...)
		if got, want := readTree(t, dst), sums(tree); !maps.Equal(got, want) {
			t.Fatalf("synced back %v, want %v", got, want)
		}
		// A sync that mirrors removes what the source lost.
		if err := os.Remove(filepath.Join(src, "a.txt")); err != nil {
			t.Fatal(err)
		}
		delete(tree, "a.txt")
		added := map[string][]byte{"sub/new.txt": pattern(333, 34)}
		writeTree(t, src, added)
		maps.Copy(tree, added)
		if n := c.syncs(t, src, bucket, "tree/"); n != len(added) {
			t.Errorf("sync after a change reported %d uploads, want %d", n, len(added))
		}
		wantListing(t, c, bucket, "after the mirroring sync", union(uploaded, sizes("tree/", tree)))
		c.run(t, c.removeTree(bucket, "tree/")...)
		wantListing(t, c, bucket, "after removing tree/", uploaded)
	})

	for _, o := range objects {
		c.run(t, c.remove(bucket, o.key)...)
		delete(uploaded, o.key)
		wantListing(t, c, bucket, "after removing "+o.key, uploaded)
	}
	c.run(t, c.removeBucket(bucket)...)
	if got := c.buckets(t); len(got) != 0 {
		t.Fatalf("%s lists buckets %v after removing %s", c.name, got, bucket)
	}
}

// multipartETag is the ETag S3 gives an object uploaded in parts of
// partSize bytes.
func multipartETag(data []byte, partSize int64) string {
	var sums []byte
	n := 0
	for off := int64(0); off < int64(len(data)); off += partSize {
		end := min(off+partSize, int64(len(data)))
		s := md5.Sum(data[off:end])
		sums = append(sums, s[:]...)
		n++
	}
	all := md5.Sum(sums)
	return fmt.Sprintf("%s-%d", hex.EncodeToString(all[:]), n)
}
