// Command builderimage makes the Dockerfile's builder image (its GO_IMAGE)
// from what this machine has, for a machine that cannot pull golang:1.26:
// the host's Go toolchain copied into an otherwise empty image, and a module
// cache served as a file:// GOPROXY, so that the Dockerfile's own `go mod
// download` step runs unchanged. The image has no shell, no libc and no
// network, which is why the Dockerfile uses exec-form RUN only.
//
// It pulls no image and runs no test. An image made from the same
// toolchain, go.sum and recipe is reused, not made again. It prints the
// image's tag, the last line of its output:
//
//	scripts/builder-image [-tag grpcplay-go:local]
package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// DefaultTag is the image's tag unless -tag says otherwise.
const DefaultTag = "grpcplay-go:local"

// FingerprintLabel records what the image was made from: a rerun with the
// same toolchain and go.sum reuses it instead of uploading ~180 MB again.
const FingerprintLabel = "dev.grpcplay.builder.fingerprint"

const dockerfile = `FROM scratch
COPY go /usr/local/go
COPY goproxy /goproxy
# The module cache stands in for proxy.golang.org. go.sum still verifies every
# module; there is no checksum database to ask.
ENV PATH=/usr/local/go/bin HOME=/tmp TMPDIR=/tmp GOCACHE=/tmp/gocache GOMODCACHE=/tmp/gomodcache \
    GOTOOLCHAIN=local GOPROXY=file:///goproxy GOSUMDB=off
WORKDIR /tmp
`

// Parts of GOROOT that building a module does not use.
var skippedGoroot = map[string]bool{
	"api": true, "doc": true, "misc": true, "test": true,
	"src/cmd":                             true,
	"bin/gofmt":                           true,
	"pkg/tool/" + toolDir + "/cover":      true,
	"pkg/tool/" + toolDir + "/fix":        true,
	"pkg/tool/" + toolDir + "/preprofile": true,
	"pkg/tool/" + toolDir + "/vet":        true,
}

const toolDir = runtime.GOOS + "_" + runtime.GOARCH

func main() {
	log.SetFlags(0)
	log.SetPrefix("builder-image: ")
	tag := flag.String("tag", DefaultTag, "the image's tag")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: scripts/builder-image [-tag %s]\n\n", DefaultTag)
		fmt.Fprintln(flag.CommandLine.Output(), "Makes the Dockerfile's builder image from this machine's Go toolchain and modules, then:")
		fmt.Fprintf(flag.CommandLine.Output(), "  docker build --build-arg GO_IMAGE=%s -t grpcplay .\n\n", DefaultTag)
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		log.Fatalf("unexpected argument %q; see scripts/builder-image -h", flag.Arg(0))
	}
	if err := makeImage(*tag); err != nil {
		log.Fatal(err)
	}
	fmt.Println(*tag)
}

func makeImage(tag string) error {
	goroot, err := output("go", "env", "GOROOT")
	if err != nil {
		return err
	}
	modcache, err := fillModCache()
	if err != nil {
		return err
	}
	goSum, err := os.ReadFile("go.sum")
	if err != nil {
		return err
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n%s\n", runtime.Version(), goroot, modcache, dockerfile)
	h.Write(goSum)
	fingerprint := hex.EncodeToString(h.Sum(nil))[:16]

	have, err := output("docker", "image", "inspect", "--format", `{{index .Config.Labels "`+FingerprintLabel+`"}}`, tag)
	if err == nil && have == fingerprint {
		log.Printf("%s is up to date (fingerprint %s)", tag, fingerprint)
		return nil
	}

	start := time.Now()
	log.Printf("making %s from %s and %s", tag, goroot, modcache)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", "build", "--force-rm", "--label", FingerprintLabel+"="+fingerprint, "-t", tag, "-")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return err
	}
	tarErr := writeContext(stdin, goroot, filepath.Join(modcache, "cache", "download"))
	stdin.Close()
	if err := errors.Join(cmd.Wait(), tarErr); err != nil {
		// A build cut short may still have been tagged.
		_ = exec.Command("docker", "image", "rm", tag).Run()
		return fmt.Errorf("docker build of %s: %w\n%s", tag, err, out.String())
	}
	log.Printf("made %s in %v", tag, time.Since(start).Round(time.Second))
	return nil
}

// fillModCache fills a module cache of its own with every module the
// Dockerfile's `go mod download` asks for, tools' modules included, and
// returns it. It is not the host's GOMODCACHE, which other builds on the
// machine write while the image copies it, and which holds only what earlier
// commands happened to download. Modules come from the host's cache when it
// has them, else from the configured GOPROXY. The cache is kept, as Go keeps
// its own, so that a rerun downloads nothing.
func fillModCache() (string, error) {
	userCache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	modcache := filepath.Join(userCache, "grpcplay", "builder-gomodcache")
	hostCache, err := output("go", "env", "GOMODCACHE")
	if err != nil {
		return "", err
	}
	proxy, err := output("go", "env", "GOPROXY")
	if err != nil {
		return "", err
	}
	if proxy == "off" || proxy == "" {
		proxy = "https://proxy.golang.org"
	}
	cmd := exec.Command("go", "mod", "download")
	cmd.Env = append(os.Environ(),
		"GOMODCACHE="+modcache, "GOFLAGS=-mod=mod -modcacherw",
		"GOPROXY=file://"+filepath.ToSlash(filepath.Join(hostCache, "cache", "download"))+","+proxy,
	)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go mod download: %w\n%s", err, out)
	}
	return modcache, nil
}

// output runs a command and returns its stdout, trimmed.
func output(name string, args ...string) (string, error) {
	var stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
}

// writeContext streams the build context as a tar: no temporary copy of the
// toolchain on disk.
func writeContext(w io.Writer, goroot, downloadCache string) error {
	tw := tar.NewWriter(w)
	if err := addFile(tw, "Dockerfile", []byte(dockerfile)); err != nil {
		return err
	}
	err := addTree(tw, goroot, "go", func(rel string, d fs.DirEntry) bool {
		return skippedGoroot[rel] || (d.IsDir() && d.Name() == "testdata")
	})
	if err != nil {
		return err
	}
	err = addTree(tw, downloadCache, "goproxy", func(rel string, d fs.DirEntry) bool {
		// sumdb is the checksum database's cache; locks are the host's.
		return rel == "sumdb" || strings.HasSuffix(rel, ".lock") || strings.HasSuffix(rel, ".partial") || strings.HasSuffix(rel, ".tmp")
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

func addFile(tw *tar.Writer, name string, data []byte) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}

func addTree(tw *tar.Writer, root, prefix string, skip func(rel string, d fs.DirEntry) bool) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel != "." && skip(rel, d) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		return addEntry(tw, path, rel, prefix, d)
	})
}

func addEntry(tw *tar.Writer, path, rel, prefix string, d fs.DirEntry) error {
	info, err := d.Info()
	if err != nil {
		return err
	}
	var link string
	if info.Mode()&fs.ModeSymlink != 0 {
		if link, err = os.Readlink(path); err != nil {
			return err
		}
	}
	hdr, err := tar.FileInfoHeader(info, link)
	if err != nil {
		return err
	}
	hdr.Name = prefix + "/" + rel
	if rel == "." {
		hdr.Name = prefix
	}
	if d.IsDir() {
		hdr.Name += "/"
	}
	// The module cache is read-only on disk; the image must not care.
	hdr.Mode |= 0o200
	hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if !info.Mode().IsRegular() {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(tw, f)
	return err
}
