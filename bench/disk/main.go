// Command disk measures what the machine's disk gives a writer of durable
// 4 MiB files (write, fdatasync, rename into place, directory fsync), with
// 1, 4 and 8 writers: the ceiling for the block store's write throughput,
// reported beside the gateway's figures in docs/benchmarks.md.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	dir := flag.String("dir", ".", "directory on the disk to measure (a temporary subdirectory is used and removed)")
	files := flag.Int("files", 128, "4 MiB files per measurement")
	flag.Parse()
	root, err := os.MkdirTemp(*dir, "disk-bench-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(root)
	buf := make([]byte, 4<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	for _, writers := range []int{1, 4, 8} {
		start := time.Now()
		var wg sync.WaitGroup
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := w; i < *files; i += writers {
					if err := put(root, fmt.Sprintf("f%d", i), buf); err != nil {
						log.Fatal(err)
					}
				}
			}(w)
		}
		wg.Wait()
		d := time.Since(start)
		fmt.Printf("writers=%d  %.0f MB/s  (%d x 4 MiB durable files in %v)\n",
			writers, float64(*files*len(buf))/d.Seconds()/1e6, *files, d.Round(time.Millisecond))
		os.RemoveAll(root)
		os.MkdirAll(root, 0o750)
	}
}

func put(dir, name string, data []byte) error {
	tmp := filepath.Join(dir, "."+name)
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
