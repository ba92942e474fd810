package arch_test

import (
	"archive/tar"
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/testing/testcluster"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// ociDescriptor, ociIndex, ociManifest and ociConfig are the parts of the
// OCI image layout the test reads.
type ociDescriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Annotations map[string]string `json:"annotations"`
	Platform    *struct {
		OS, Architecture, Variant string
	} `json:"platform"`
}

type ociIndex struct {
	Manifests []ociDescriptor `json:"manifests"`
}

type ociManifest struct {
	Config ociDescriptor   `json:"config"`
	Layers []ociDescriptor `json:"layers"`
}

type ociConfig struct {
	Architecture string `json:"architecture"`
	Config       struct {
		Entrypoint, Cmd, Env []string
		User                 string
	} `json:"config"`
}

// blob decodes the JSON blob digest of the layout at dir into v.
func blob(t *testing.T, dir, digest string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "blobs", strings.Replace(digest, ":", "/", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", digest, err)
	}
}

// unpackLayer writes a gzipped tar layer of the layout into root.
func unpackLayer(t *testing.T, dir, digest, root string) {
	t.Helper()
	err := eachInTarGz(filepath.Join(dir, "blobs", strings.Replace(digest, ":", "/", 1)), func(h *tar.Header, r io.Reader) (bool, error) {
		path := filepath.Join(root, filepath.Clean("/"+h.Name))
		var err error
		switch h.Typeflag {
		case tar.TypeDir:
			if err = os.MkdirAll(path, 0o755); err == nil {
				err = os.Chmod(path, h.FileInfo().Mode()) // sticky bit included
			}
		case tar.TypeReg:
			err = writeFile(path, r, os.FileMode(h.Mode).Perm())
		default:
			err = fmt.Errorf("type %c", h.Typeflag)
		}
		if err == nil {
			err = os.Lchown(path, h.Uid, h.Gid)
		}
		return false, err
	})
	if err != nil {
		t.Fatalf("layer %s: %v", digest, err)
	}
}

// TestImage reads make dist's OCI layout: one image index tagged with the
// release, an image per platform (linux amd64, arm64, arm v7) whose binary
// is that platform's, then runs the amd64 image as a container runtime
// would without one: its layers unpacked into a root, its entrypoint and
// command run in a chroot as its user with its environment. The core it
// starts serves, and a function uploaded to it answers.
func TestImage(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("runs the image's root in a chroot: needs root")
	}
	dist := dist(t)
	layout := filepath.Join(dist, "edgefaas-"+testVersion+"-oci")
	var top ociIndex
	blobFile := filepath.Join(layout, "index.json")
	b, err := os.ReadFile(blobFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &top); err != nil {
		t.Fatal(err)
	}
	if len(top.Manifests) != 1 || top.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != testVersion {
		t.Fatalf("index.json: %+v, want one index tagged %s", top.Manifests, testVersion)
	}
	var idx ociIndex
	blob(t, layout, top.Manifests[0].Digest, &idx)
	machines := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "arm": elf.EM_ARM}
	var platforms []string
	var amd64 ociManifest
	var amd64Config ociConfig
	for _, d := range idx.Manifests {
		if d.Platform == nil {
			t.Fatalf("a manifest without a platform: %+v", d)
		}
		plat := d.Platform.OS + "/" + d.Platform.Architecture
		if d.Platform.Variant != "" {
			plat += "/" + d.Platform.Variant
		}
		platforms = append(platforms, plat)
		var m ociManifest
		blob(t, layout, d.Digest, &m)
		var cfg ociConfig
		blob(t, layout, m.Config.Digest, &cfg)
		if !slices.Equal(cfg.Config.Entrypoint, []string{"/usr/local/bin/edgefaas"}) || cfg.Config.User != "65532:65532" {
			t.Errorf("%s: entrypoint %v, user %q", d.Platform.Architecture, cfg.Config.Entrypoint, cfg.Config.User)
		}
		root := t.TempDir()
		for _, l := range m.Layers {
			unpackLayer(t, layout, l.Digest, root)
		}
		f, err := elf.Open(filepath.Join(root, "usr/local/bin/edgefaas"))
		if err != nil {
			t.Fatalf("%s: %v", d.Platform.Architecture, err)
		}
		if f.Machine != machines[d.Platform.Architecture] {
			t.Errorf("%s image holds a %v binary", d.Platform.Architecture, f.Machine)
		}
		f.Close()
		if d.Platform.Architecture == "amd64" {
			amd64, amd64Config = m, cfg
		}
	}
	slices.Sort(platforms)
	if want := []string{"linux/amd64", "linux/arm/v7", "linux/arm64"}; !slices.Equal(platforms, want) {
		t.Fatalf("platforms %v, want %v", platforms, want)
	}

	// Run it: the image's root, its user, its environment, its command
	// with the address moved to loopback.
	root := t.TempDir()
	for _, l := range amd64.Layers {
		unpackLayer(t, layout, l.Digest, root)
	}
	for _, f := range []string{"etc/passwd", "etc/ssl/certs/ca-certificates.crt", "tmp", "var/lib/edgefaas"} {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Errorf("the image lacks /%s: %v", f, err)
		}
	}
	cmd := slices.Clone(amd64Config.Config.Cmd)
	addr := "127.0.0.1:" + testcluster.Port(t, "127.0.0.1")
	for i, a := range cmd {
		if a == "0.0.0.0:4000" {
			cmd[i] = addr
		}
	}
	if !slices.Contains(cmd, addr) {
		t.Fatalf("the image's command %v does not set the address it listens on", amd64Config.Config.Cmd)
	}
	cmd = append(cmd, "--with-worker", "--node-addr", "127.0.0.1:"+testcluster.Port(t, "127.0.0.1"))
	chroot, err := exec.LookPath("chroot")
	if err != nil {
		t.Skipf("no chroot: %v", err)
	}
	p := &testcluster.Process{
		Binary: chroot,
		Args:   append([]string{"--userspec=" + amd64Config.Config.User, root, amd64Config.Config.Entrypoint[0]}, cmd...),
		Env:    amd64Config.Config.Env,
	}
	core, err := testcluster.LaunchCore(p, filepath.Join(root, "var/lib/edgefaas/core"), 60*time.Second)
	if err != nil {
		t.Fatalf("the image's core: %v", err)
	}
	defer core.Stop(30 * time.Second)
	c, err := client.New(core.URL, core.Guest)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := c.CreateFunction(ctx, client.DefaultModule, client.Upload{Name: "hello", Code: testmodules.Read(t, "hello")}); err != nil {
		t.Fatalf("upload to the image's core: %v\n%s", err, core.Log)
	}
	// The worker in the same process joins as the core starts; a call
	// before it has is answered 503.
	wait.ForState(t, time.Minute, "hello answered by the image's core", func() (bool, string) {
		out, err := c.Invoke(ctx, client.DefaultModule, "hello", json.RawMessage(`{"name":"image"}`))
		if err != nil {
			return false, err.Error()
		}
		return strings.Contains(string(out), "Hello, image!"), string(out)
	})
}
