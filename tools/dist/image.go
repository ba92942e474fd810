package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image's user: distroless's "nonroot" numbers, so that volumes
// prepared for other minimal images fit.
const imageUID = 65532

// binaryFlags collects -binary os/arch[/variant]=path.
type binaryFlags map[string]string

func (b binaryFlags) String() string { return fmt.Sprint(map[string]string(b)) }
func (b binaryFlags) Set(s string) error {
	plat, path, ok := strings.Cut(s, "=")
	if !ok {
		return fmt.Errorf("want os/arch[/variant]=path, got %q", s)
	}
	b[plat] = path
	return nil
}

// runImage writes a multi-platform OCI image (an index of one image per
// binary) as an OCI layout directory and as a tar of that directory.
func runImage(args []string) error {
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	version := fs.String("version", "", "release version: the image's tag")
	name := fs.String("name", "edgefaas", "the image's repository name (its tag is the version)")
	certs := fs.String("ca-certs", "", "a CA bundle to put at /etc/ssl/certs/ca-certificates.crt (functions' outbound HTTPS)")
	dir := fs.String("layout", "", "the OCI layout directory to write (replaced)")
	tarPath := fs.String("tar", "", "also write the layout as this tar (an OCI archive)")
	bins := binaryFlags{}
	fs.Var(bins, "binary", "os/arch[/variant]=path, once per platform")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *version == "" || *dir == "" || len(bins) == 0 {
		return errors.New("-version, -layout and at least one -binary are required")
	}
	var ca []byte
	if *certs != "" {
		var err error
		if ca, err = os.ReadFile(*certs); err != nil {
			return err
		}
	}
	mtime := sourceDate()
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	plats := make([]string, 0, len(bins))
	for p := range bins {
		plats = append(plats, p)
	}
	sort.Strings(plats)
	for _, p := range plats {
		plat, err := v1.ParsePlatform(p)
		if err != nil {
			return err
		}
		img, err := platformImage(*plat, bins[p], *version, ca, mtime)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: plat}})
	}
	if err := os.RemoveAll(*dir); err != nil {
		return err
	}
	lp, err := layout.Write(*dir, empty.Index)
	if err != nil {
		return err
	}
	ref := *name + ":" + *version
	anns := map[string]string{
		"org.opencontainers.image.ref.name": *version,
		"io.containerd.image.name":          containerdName(ref),
	}
	if err := lp.AppendIndex(idx, layout.WithAnnotations(anns)); err != nil {
		return err
	}
	fmt.Println(*dir)
	if *tarPath != "" {
		if err := tarDir(*dir, *tarPath, mtime); err != nil {
			return err
		}
		fmt.Println(*tarPath)
	}
	return nil
}

// platformImage is one platform's image: a single layer with the binary,
// a passwd naming the user, /tmp and the data directory, on no base.
func platformImage(plat v1.Platform, binary, version string, ca []byte, mtime time.Time) (v1.Image, error) {
	bin, err := os.ReadFile(binary)
	if err != nil {
		return nil, err
	}
	layerTar, err := rootfs(bin, ca, mtime)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{
		Created: v1.Time{Time: mtime}, CreatedBy: "edgefaas tools/dist", Comment: "the edgefaas binary",
	}})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant, cf.OSVersion = plat.OS, plat.Architecture, plat.Variant, plat.OSVersion
	cf.Created = v1.Time{Time: mtime}
	cf.Config = v1.Config{
		Entrypoint: []string{"/usr/local/bin/edgefaas"},
		// The core by default, its API on every interface; a worker:
		// `worker --join ...` (deploy/kubernetes/30-worker.yaml).
		Cmd:  []string{"core", "--http-addr", "0.0.0.0:4000"},
		User: fmt.Sprintf("%d:%d", imageUID, imageUID),
		Env: []string{
			"PATH=/usr/local/bin:/usr/bin:/bin",
			// The core keeps its data in /var/lib/edgefaas/core, a worker
			// its compiled code in /var/lib/edgefaas/worker.
			"XDG_DATA_HOME=/var/lib",
		},
		WorkingDir:   "/var/lib/edgefaas",
		ExposedPorts: map[string]struct{}{"4000/tcp": {}, "4001/tcp": {}},
		Volumes:      map[string]struct{}{"/var/lib/edgefaas": {}},
		Labels: map[string]string{
			"org.opencontainers.image.title":    "edgefaas",
			"org.opencontainers.image.version":  version,
			"org.opencontainers.image.source":   "https://github.com/edgefaas/edgefaas",
			"org.opencontainers.image.licenses": "Apache-2.0",
		},
	}
	return mutate.ConfigFile(img, cf)
}

// rootfs is the layer's tar.
func rootfs(bin, ca []byte, mtime time.Time) ([]byte, error) {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	dir := func(name string, mode int64, uid int) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, Uid: uid, Gid: uid, ModTime: mtime})
	}
	file := func(name string, mode int64, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: mtime}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nedgefaas:x:%d:%d:edgefaas:/var/lib/edgefaas:/sbin/nologin\n", imageUID, imageUID)
	group := fmt.Sprintf("root:x:0:\nedgefaas:x:%d:\n", imageUID)
	steps := []func() error{
		func() error { return dir("etc", 0o755, 0) },
		func() error { return file("etc/passwd", 0o644, []byte(passwd)) },
		func() error { return file("etc/group", 0o644, []byte(group)) },
		func() error { return dir("tmp", 0o1777, 0) },
		func() error { return dir("usr", 0o755, 0) },
		func() error { return dir("usr/local", 0o755, 0) },
		func() error { return dir("usr/local/bin", 0o755, 0) },
		func() error { return file("usr/local/bin/edgefaas", 0o755, bin) },
		func() error { return dir("var", 0o755, 0) },
		func() error { return dir("var/lib", 0o755, 0) },
		func() error { return dir("var/lib/edgefaas", 0o700, imageUID) },
	}
	if ca != nil {
		steps = append(steps,
			func() error { return dir("etc/ssl", 0o755, 0) },
			func() error { return dir("etc/ssl/certs", 0o755, 0) },
			func() error { return file("etc/ssl/certs/ca-certificates.crt", 0o644, ca) },
		)
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// containerdName is ref as containerd names images (`ctr images import`
// keeps it): a bare name is in docker.io/library.
func containerdName(ref string) string {
	first, _, _ := strings.Cut(ref, "/")
	if !strings.Contains(ref, "/") {
		return "docker.io/library/" + ref
	}
	if !strings.ContainsAny(first, ".:") && first != "localhost" {
		return "docker.io/" + ref
	}
	return ref
}

// tarDir writes dir's files, sorted, as a tar at path: an OCI archive
// (`podman load`, `skopeo copy oci-archive:`, `ctr images import`).
func tarDir(dir, path string, mtime time.Time) (err error) {
	var names []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			names = append(names, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(names)
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	tw := tar.NewWriter(f)
	for _, p := range names {
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if st.IsDir() {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: rel + "/", Mode: 0o755, ModTime: mtime}); err != nil {
				return err
			}
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: rel, Mode: 0o644, Size: int64(len(data)), ModTime: mtime}); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	return tw.Close()
}
