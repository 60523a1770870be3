package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/claudefs/cfs-gateway/internal/config"
	"github.com/claudefs/cfs-gateway/internal/gateway"
)

func runServe(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlags("serve", "serve [--config FILE] [--data-dir DIR]",
		"Starts the gateway. With no configuration it runs a single node with its state\n"+
			"under ./cfs-data. SIGHUP reloads the configuration; SIGINT or SIGTERM stop it\n"+
			"after flushing buffered writes.", errOut)
	cfgPath := fs.String("config", "", "configuration file (default "+config.DefaultPath+" when it exists)")
	dataDir := fs.String("data-dir", "", "overrides data_dir of the configuration")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, source, err := loadConfig(*cfgPath, *dataDir)
	if err != nil {
		return err
	}
	level := new(slog.LevelVar)
	level.Set(cfg.Log.Level.SlogLevel())
	log := newLogger(cfg, level, errOut)
	slog.SetDefault(log)

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	g, err := gateway.Open(ctx, cfg, gateway.Options{Logger: log, Level: level})
	if err != nil {
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			next, _, err := loadConfig(*cfgPath, *dataDir)
			if err != nil {
				log.Error("configuration reload refused; the running configuration stays", "err", err)
				continue
			}
			g.Reload(next)
		}
	}()
	where := source
	if where == "" {
		where = "built-in defaults"
	}
	return g.Serve(ctx, func(services []gateway.Service) {
		fmt.Fprintf(out, "cfs-gateway %s serving; configuration: %s; data: %s\n", gateway.Version, where, cfg.DataDir)
		for _, s := range services {
			fmt.Fprintf(out, "  %-8s listening on %-22s (%s)\n", s.Name, s.Addr, s.Key)
		}
	})
}

// loadConfig reads the configuration the command line names and applies
// the flag overrides.
func loadConfig(path, dataDir string) (*config.Config, string, error) {
	cfg, source, err := config.LoadDefaultOrFile(path)
	if err != nil {
		return nil, "", err
	}
	if dataDir != "" {
		cfg.DataDir = dataDir
	}
	return cfg, source, nil
}

func newLogger(cfg *config.Config, level *slog.LevelVar, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == config.LogJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func runValidateConfig(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := newFlags("validate-config", "validate-config [--config FILE | FILE]",
		"Checks a configuration file without starting anything, printing one line per\n"+
			"problem (unknown keys, wrong types, out-of-range values). Exits 1 if there is any.\n"+
			"With --print, writes the full commented default configuration instead.", errOut)
	cfgPath := fs.String("config", "", "configuration file (default "+config.DefaultPath+")")
	printExample := fs.Bool("print", false, "print the commented default configuration and exit")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *printExample {
		_, err := io.WriteString(out, config.Example())
		return err
	}
	path := *cfgPath
	if fs.NArg() > 1 || (fs.NArg() == 1 && path != "") {
		fs.Usage()
		return errUsage
	}
	if fs.NArg() == 1 {
		path = fs.Arg(0)
	}
	if path == "" {
		path = config.DefaultPath
	}
	if _, err := config.Load(path); err != nil {
		fmt.Fprintln(errOut, err)
		return exitCode(1)
	}
	fmt.Fprintf(out, "%s: configuration is valid\n", path)
	return nil
}
