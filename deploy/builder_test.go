package deploy

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// The Dockerfile builds FROM golang:1.26 by default, and this machine can pull
// no image. The compose test therefore makes a stand-in for it from what the
// host has: its Go toolchain, and its module download cache served as a
// file:// GOPROXY, so that the Dockerfile's own `go mod download` step runs
// unchanged. The stand-in has no shell, no libc and no network, which is why
// the Dockerfile uses exec-form RUN only.
const standInTag = "grpcplay-test-go:local"

// fingerprintLabel records what the stand-in was made from: a rerun with the
// same toolchain and go.sum reuses it instead of uploading ~250 MB again.
const fingerprintLabel = "dev.grpcplay.test.fingerprint"

const standInDockerfile = `FROM scratch
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

// goBuilderImage returns the image to pass as the Dockerfile's GO_IMAGE:
// $GRPCPLAY_GO_IMAGE when set (e.g. golang:1.26 where pulling works), else the
// stand-in, built when missing or stale.
func goBuilderImage(t *testing.T, repo string) string {
	t.Helper()
	if img := os.Getenv("GRPCPLAY_GO_IMAGE"); img != "" {
		return img
	}
	goroot := strings.TrimSpace(run(t, time.Minute, repo, nil, "go", "env", "GOROOT"))
	modcache := standInModCache(t, repo)

	goSum, err := os.ReadFile(filepath.Join(repo, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n%s\n", runtime.Version(), goroot, modcache, standInDockerfile)
	h.Write(goSum)
	fingerprint := hex.EncodeToString(h.Sum(nil))[:16]

	have, err := exec.Command("docker", "image", "inspect", "--format",
		`{{index .Config.Labels "`+fingerprintLabel+`"}}`, standInTag).Output()
	if err == nil && strings.TrimSpace(string(have)) == fingerprint {
		t.Logf("reusing %s (fingerprint %s)", standInTag, fingerprint)
		return standInTag
	}

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", "build", "--force-rm", "--label", fingerprintLabel+"="+fingerprint, "-t", standInTag, "-")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tarErr := writeStandInContext(stdin, goroot, filepath.Join(modcache, "cache", "download"))
	stdin.Close()
	if err := cmd.Wait(); err != nil || tarErr != nil {
		// A context cut short may still have been built and tagged.
		runErr(time.Minute, repo, nil, "docker", "image", "rm", standInTag)
		t.Fatalf("building %s: %v, %v\n%s", standInTag, tarErr, err, tail(out.String(), 40))
	}
	t.Logf("built %s from %s and the module cache in %v", standInTag, goroot, time.Since(start).Round(time.Millisecond))
	return standInTag
}

// standInModCache fills a module cache of the test's own with every module
// the Dockerfile's `go mod download` asks for, tools' modules included, and
// returns it. It is not the host's GOMODCACHE, which other builds on the
// machine write while the stand-in copies it, and which holds only what
// earlier commands happened to download. Modules come from the host's cache
// when it has them, else from the configured GOPROXY. The cache is kept, as
// Go keeps its own, so that a rerun downloads nothing.
func standInModCache(t *testing.T, repo string) string {
	t.Helper()
	userCache, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	modcache := filepath.Join(userCache, "grpcplay-test", "gomodcache")
	hostCache := strings.TrimSpace(run(t, time.Minute, repo, nil, "go", "env", "GOMODCACHE"))
	proxy := strings.TrimSpace(run(t, time.Minute, repo, nil, "go", "env", "GOPROXY"))
	if proxy == "off" || proxy == "" {
		proxy = "https://proxy.golang.org"
	}
	env := []string{
		"GOMODCACHE=" + modcache, "GOFLAGS=-mod=mod -modcacherw",
		"GOPROXY=file://" + filepath.ToSlash(filepath.Join(hostCache, "cache", "download")) + "," + proxy,
	}
	run(t, 10*time.Minute, repo, env, "go", "mod", "download")
	return modcache
}

// writeStandInContext streams the build context as a tar: no temporary copy
// of the toolchain on disk.
func writeStandInContext(w io.Writer, goroot, downloadCache string) error {
	tw := tar.NewWriter(w)
	if err := addFile(tw, "Dockerfile", []byte(standInDockerfile)); err != nil {
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
	})
}

// run runs a command with a deadline and returns its stdout; a failure ends
// the test with the command's output.
func run(t *testing.T, timeout time.Duration, dir string, env []string, name string, args ...string) string {
	t.Helper()
	out, err := runErr(timeout, dir, env, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, tail(out, 40))
	}
	return out
}

func runErr(timeout time.Duration, dir string, env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String() + stderr.String(), err
	}
	return stdout.String(), nil
}

func tail(s string, lines int) string {
	all := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}
