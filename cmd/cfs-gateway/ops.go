package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/claudefs/cfs-gateway/internal/core"
	"github.com/claudefs/cfs-gateway/internal/core/quota"
	"github.com/claudefs/cfs-gateway/internal/gateway"
)

func runVersion(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlags("version", "version", "Prints the gateway's version.", errOut)
	if err := parse(fs, args); err != nil {
		return err
	}
	fmt.Fprintf(out, "cfs-gateway %s\n", gateway.Version)
	return nil
}

func runFsck(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlags("fsck", "fsck [--config FILE] [--skip-blocks]",
		"Checks the filesystem: directory entries, link counts, the readdir index, chunk\n"+
			"maps, block references and quota usage, and reads every block to verify its\n"+
			"checksums. It names each affected file and changes nothing. Exits 1 if it\n"+
			"finds a problem. Works on a stopped gateway's store or through a running one.", errOut)
	cfgPath := fs.String("config", "", "configuration file")
	skip := fs.Bool("skip-blocks", false, "check metadata only; do not read blocks")
	if err := parse(fs, args); err != nil {
		return err
	}
	op, _, err := openOperator(ctx, *cfgPath, errOut)
	if err != nil {
		return err
	}
	defer op.Close()
	start := time.Now()
	rep, err := op.Fsck(ctx, core.FsckOptions{SkipBlocks: *skip, Progress: progressPrinter(errOut, "fsck")})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "fsck: %d inodes, %d directories, %d entries, %d chunk maps, %d slices verified in %s\n",
		rep.Inodes, rep.Dirs, rep.Entries, rep.Chunks, rep.Slices, time.Since(start).Round(time.Millisecond))
	for _, p := range rep.Problems {
		fmt.Fprintln(out, p.String())
	}
	if rep.UnreferencedBlocks > 0 {
		// Not a problem: a crash between storing blocks and committing them
		// leaves such blocks, and gc removes them.
		fmt.Fprintf(out, "fsck: %d blocks belong to no slice; `cfs-gateway gc` removes them\n", rep.UnreferencedBlocks)
	}
	if len(rep.Problems) > 0 {
		fmt.Fprintf(out, "fsck: %d problems found\n", len(rep.Problems))
		return exitCode(1)
	}
	fmt.Fprintln(out, "fsck: no problems found")
	return nil
}

func runGC(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlags("gc", "gc [--config FILE] [--safety-window DURATION]",
		"Purges unlinked files, deletes the blocks of unreferenced slices whose delay\n"+
			"has passed, and removes blocks that no metadata references (left by a crash)\n"+
			"once they are older than the safety window.", errOut)
	cfgPath := fs.String("config", "", "configuration file")
	window := fs.Duration("safety-window", -1, "spare orphan blocks younger than this (default data.gc_safety_window_secs)")
	if err := parse(fs, args); err != nil {
		return err
	}
	op, cfg, err := openOperator(ctx, *cfgPath, errOut)
	if err != nil {
		return err
	}
	defer op.Close()
	if *window < 0 {
		*window = cfg.Data.GCSafetyWindow()
	}
	rep, err := op.GC(ctx, core.GCOptions{SafetyWindow: *window, Progress: progressPrinter(errOut, "gc")})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "gc: purged %d unlinked files, deleted %d unreferenced slices, removed %d orphan blocks (%d bytes); %d young blocks spared\n",
		rep.PurgedFiles, rep.DeletedSlices, rep.OrphanBlocks, rep.OrphanBytes, rep.KeptYoung)
	return nil
}

// idFlags are the --user/--group selectors of the quota commands.
func idFlags(fs *flag.FlagSet) (user, group *string) {
	return fs.String("user", "", "user id"), fs.String("group", "", "group id")
}

func pickID(user, group string) (bool, uint32, error) {
	if (user == "") == (group == "") {
		return false, 0, errors.New("give exactly one of --user ID or --group ID")
	}
	s, isGroup := user, false
	if group != "" {
		s, isGroup = group, true
	}
	id, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return false, 0, fmt.Errorf("%q is not a numeric id", s)
	}
	return isGroup, uint32(id), nil
}

func runQuota(ctx context.Context, args []string, out, errOut io.Writer) error {
	return subcommand("quota", args, errOut, map[string]func([]string) error{
		"set": func(args []string) error {
			fs := newFlags("quota set", "quota set (--user ID | --group ID) [--bytes-soft N] [--bytes-hard N] [--inodes-soft N] [--inodes-hard N]",
				"Sets the limits of one user or group, replacing the configured defaults for it.\n"+
					"0 means unlimited. Byte values accept K, M, G and T suffixes (powers of 1024).", errOut)
			cfgPath := fs.String("config", "", "configuration file")
			user, group := idFlags(fs)
			bs := fs.String("bytes-soft", "0", "soft limit on bytes")
			bh := fs.String("bytes-hard", "0", "hard limit on bytes")
			is := fs.Uint64("inodes-soft", 0, "soft limit on files and directories")
			ih := fs.Uint64("inodes-hard", 0, "hard limit on files and directories")
			if err := parse(fs, args); err != nil {
				return err
			}
			isGroup, id, err := pickID(*user, *group)
			if err != nil {
				return err
			}
			lim := quota.Limits{InodesSoft: *is, InodesHard: *ih}
			if lim.BytesSoft, err = parseBytes(*bs); err != nil {
				return fmt.Errorf("--bytes-soft: %w", err)
			}
			if lim.BytesHard, err = parseBytes(*bh); err != nil {
				return fmt.Errorf("--bytes-hard: %w", err)
			}
			if err := lim.Validate(); err != nil {
				return err
			}
			op, _, err := openOperator(ctx, *cfgPath, errOut)
			if err != nil {
				return err
			}
			defer op.Close()
			e, err := op.SetQuota(ctx, isGroup, id, lim)
			if err != nil {
				return err
			}
			printQuota(out, []core.QuotaEntry{e})
			return nil
		},
		"get": func(args []string) error {
			fs := newFlags("quota get", "quota get (--user ID | --group ID)", "Prints one user's or group's usage, limits and grace state.", errOut)
			cfgPath := fs.String("config", "", "configuration file")
			user, group := idFlags(fs)
			if err := parse(fs, args); err != nil {
				return err
			}
			isGroup, id, err := pickID(*user, *group)
			if err != nil {
				return err
			}
			op, _, err := openOperator(ctx, *cfgPath, errOut)
			if err != nil {
				return err
			}
			defer op.Close()
			e, err := op.GetQuota(ctx, isGroup, id)
			if err != nil {
				return err
			}
			printQuota(out, []core.QuotaEntry{e})
			return nil
		},
		"report": func(args []string) error {
			fs := newFlags("quota report", "quota report", "Prints usage, limits and grace state of every user and group with usage or limits.", errOut)
			cfgPath := fs.String("config", "", "configuration file")
			if err := parse(fs, args); err != nil {
				return err
			}
			op, _, err := openOperator(ctx, *cfgPath, errOut)
			if err != nil {
				return err
			}
			defer op.Close()
			es, err := op.QuotaReport(ctx)
			if err != nil {
				return err
			}
			printQuota(out, es)
			return nil
		},
	})
}

func limitString(v uint64) string {
	if v == 0 {
		return "-"
	}
	return strconv.FormatUint(v, 10)
}

func printQuota(out io.Writer, es []core.QuotaEntry) {
	tw := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tID\tBYTES\tSOFT\tHARD\tINODES\tSOFT\tHARD\tLIMITS\tSTATE")
	for _, e := range es {
		src := "default"
		if e.Override {
			src = "set"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", e.Kind, e.ID,
			e.Usage.Bytes, limitString(e.Limits.BytesSoft), limitString(e.Limits.BytesHard),
			e.Usage.Inodes, limitString(e.Limits.InodesSoft), limitString(e.Limits.InodesHard), src, e.State.String())
	}
	tw.Flush()
}

func parseBytes(s string) (uint64, error) {
	mult := uint64(1)
	if n := len(s); n > 0 {
		switch strings.ToUpper(s[n-1:]) {
		case "K":
			mult = 1 << 10
		case "M":
			mult = 1 << 20
		case "G":
			mult = 1 << 30
		case "T":
			mult = 1 << 40
		}
		if mult > 1 {
			s = s[:n-1]
		}
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a byte count", s)
	}
	return v * mult, nil
}

func runUser(ctx context.Context, args []string, out, errOut io.Writer) error {
	readPassword := func(fromStdin bool, flagValue string) (string, error) {
		if !fromStdin {
			return flagValue, nil
		}
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", err
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	return subcommand("user", args, errOut, map[string]func([]string) error{
		"add": func(args []string) error {
			fs := newFlags("user add", "user add NAME --uid N --gid N [--groups G1,G2] [--password P | --password-stdin] [--no-access-key]",
				"Adds a user to the users table. The user gets an S3 access key (printed once)\n"+
					"unless --no-access-key; a password enables SMB sign-in.", errOut)
			cfgPath := fs.String("config", "", "configuration file")
			uid := fs.Int64("uid", -1, "numeric user id (required)")
			gid := fs.Int64("gid", -1, "numeric primary group id (required)")
			groups := fs.String("groups", "", "comma-separated supplementary group ids")
			pw := fs.String("password", "", "SMB password (visible to other processes; prefer --password-stdin)")
			pwStdin := fs.Bool("password-stdin", false, "read the password from the first line of standard input")
			noKey := fs.Bool("no-access-key", false, "do not create an S3 access key")
			name, rest := splitName(args)
			if err := parse(fs, rest); err != nil {
				return err
			}
			if name == "" || *uid < 0 || *gid < 0 || *uid > 1<<32-1 || *gid > 1<<32-1 {
				fs.Usage()
				return errUsage
			}
			u := core.User{Name: name, UID: uint32(*uid), GID: uint32(*gid)}
			for _, g := range strings.Split(*groups, ",") {
				if g = strings.TrimSpace(g); g == "" {
					continue
				}
				v, err := strconv.ParseUint(g, 10, 32)
				if err != nil {
					return fmt.Errorf("--groups: %q is not a numeric group id", g)
				}
				u.Groups = append(u.Groups, uint32(v))
			}
			if !*noKey {
				u.AccessKeys = []core.AccessKey{core.NewAccessKey()}
			}
			password, err := readPassword(*pwStdin, *pw)
			if err != nil {
				return err
			}
			op, _, err := openOperator(ctx, *cfgPath, errOut)
			if err != nil {
				return err
			}
			defer op.Close()
			added, err := op.AddUser(ctx, u, password)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "added user %s (uid %d, gid %d)\n", added.Name, added.UID, added.GID)
			for _, k := range added.AccessKeys {
				fmt.Fprintf(out, "S3 access key: %s\nS3 secret key: %s\n", k.ID, k.Secret)
			}
			return nil
		},
		"list": func(args []string) error {
			fs := newFlags("user list", "user list", "Lists the users.", errOut)
			cfgPath := fs.String("config", "", "configuration file")
			if err := parse(fs, args); err != nil {
				return err
			}
			op, _, err := openOperator(ctx, *cfgPath, errOut)
			if err != nil {
				return err
			}
			defer op.Close()
			users, err := op.ListUsers(ctx)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tUID\tGID\tGROUPS\tSMB\tS3 KEYS")
			for _, u := range users {
				var gs, ks []string
				for _, g := range u.Groups {
					gs = append(gs, strconv.FormatUint(uint64(g), 10))
				}
				for _, k := range u.AccessKeys {
					ks = append(ks, k.ID)
				}
				smb := "no"
				if len(u.NTHash) > 0 {
					smb = "yes"
				}
				fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\n", u.Name, u.UID, u.GID, strings.Join(gs, ","), smb, strings.Join(ks, ","))
			}
			return tw.Flush()
		},
		"delete": func(args []string) error {
			fs := newFlags("user delete", "user delete NAME", "Deletes a user and its S3 access keys. Its files keep their owner id.", errOut)
			cfgPath := fs.String("config", "", "configuration file")
			name, rest := splitName(args)
			if err := parse(fs, rest); err != nil {
				return err
			}
			if name == "" {
				fs.Usage()
				return errUsage
			}
			op, _, err := openOperator(ctx, *cfgPath, errOut)
			if err != nil {
				return err
			}
			defer op.Close()
			if err := op.DeleteUser(ctx, name); err != nil {
				return err
			}
			fmt.Fprintf(out, "deleted user %s\n", name)
			return nil
		},
		"passwd": func(args []string) error {
			fs := newFlags("user passwd", "user passwd NAME [--password P | --password-stdin]", "Sets a user's SMB password.", errOut)
			cfgPath := fs.String("config", "", "configuration file")
			pw := fs.String("password", "", "the new password")
			pwStdin := fs.Bool("password-stdin", false, "read the password from the first line of standard input")
			name, rest := splitName(args)
			if err := parse(fs, rest); err != nil {
				return err
			}
			password, err := readPassword(*pwStdin, *pw)
			if err != nil {
				return err
			}
			if name == "" || password == "" {
				fs.Usage()
				return errUsage
			}
			op, _, err := openOperator(ctx, *cfgPath, errOut)
			if err != nil {
				return err
			}
			defer op.Close()
			if err := op.SetPassword(ctx, name, password); err != nil {
				return err
			}
			fmt.Fprintf(out, "password of %s changed\n", name)
			return nil
		},
	})
}

// splitName takes a leading NAME argument off args, so that it may stand
// before the flags.
func splitName(args []string) (string, []string) {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return args[0], args[1:]
	}
	return "", args
}
