package main

import (
	"bytes"
	"compress/gzip"
	"embed"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
)

// The maintainer scripts, the copyright file and lintian's overrides of
// the Debian package.
//
//go:embed debian
var debianFiles embed.FS

// debArch maps the dist name of an architecture to Debian's.
var debArch = map[string]string{"amd64": "amd64", "arm64": "arm64", "armv7": "armhf", "armhf": "armhf"}

// runDeb writes edgefaas_DEBVERSION_ARCH.deb: /usr/bin/edgefaas, the
// systemd units (ExecStart pointed at /usr/bin), the settings as
// conffiles, and maintainer scripts that make the service user.
func runDeb(args []string) error {
	fs := flag.NewFlagSet("deb", flag.ContinueOnError)
	version := fs.String("version", "", "release version (v1.2.3 or git describe's)")
	arch := fs.String("arch", "", "amd64, arm64 or armv7 (armhf)")
	binary := fs.String("binary", "", "the static linux edgefaas binary for arch")
	root := fs.String("root", ".", "the repository root")
	out := fs.String("out", "dist", "output directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *version == "" || *binary == "" {
		return errors.New("-version and -binary are required")
	}
	darch, ok := debArch[*arch]
	if !ok {
		return fmt.Errorf("unknown architecture %q (amd64, arm64, armv7)", *arch)
	}
	tmp, err := os.MkdirTemp("", "edgefaas-deb-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	info, err := debInfo(*version, darch, *binary, *root, tmp)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := deb.Default.Package(info, &buf); err != nil {
		return fmt.Errorf("package: %w", err)
	}
	path := filepath.Join(*out, fmt.Sprintf("edgefaas_%s_%s.deb", info.Version, darch))
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Println(path)
	return nil
}

// debInfo describes the package; tmp receives the files made for it (the
// units with their ExecStart rewritten, the scripts, the changelog).
func debInfo(version, arch, binary, root, tmp string) (*nfpm.Info, error) {
	dv := debVersion(version)
	mtime := sourceDate()
	contents := files.Contents{
		{Source: binary, Destination: "/usr/bin/edgefaas", FileInfo: &files.ContentFileInfo{Mode: 0o755}},
	}
	for _, role := range []string{"core", "worker"} {
		unit, err := os.ReadFile(filepath.Join(root, "deploy/systemd/edgefaas-"+role+".service"))
		if err != nil {
			return nil, err
		}
		unit = bytes.ReplaceAll(unit, []byte("/usr/local/bin/edgefaas"), []byte("/usr/bin/edgefaas"))
		unit = bytes.ReplaceAll(unit, []byte("Installed by deploy/install.sh"), []byte("Installed by the edgefaas package"))
		src := filepath.Join(tmp, "edgefaas-"+role+".service")
		if err := os.WriteFile(src, unit, 0o644); err != nil {
			return nil, err
		}
		contents = append(contents,
			&files.Content{Source: src, Destination: "/lib/systemd/system/edgefaas-" + role + ".service", FileInfo: &files.ContentFileInfo{Mode: 0o644}},
			&files.Content{Source: filepath.Join(root, "deploy/systemd/"+role+".env"), Destination: "/etc/edgefaas/" + role + ".env",
				Type: files.TypeConfig, FileInfo: &files.ContentFileInfo{Mode: 0o644}},
		)
	}
	// /etc/edgefaas and the settings ship with Debian's usual modes (their
	// defaults hold no secret); postinst gives them to the service's group,
	// 0750 and 0640, as deploy/install.sh does.
	contents = append(contents, &files.Content{Destination: "/etc/edgefaas", Type: files.TypeDir, FileInfo: &files.ContentFileInfo{Mode: 0o755}})

	scripts := map[string]string{}
	for _, name := range []string{"postinst", "prerm", "postrm", "copyright", "lintian-overrides"} {
		data, err := debianFiles.ReadFile("debian/" + name)
		if err != nil {
			return nil, err
		}
		scripts[name] = filepath.Join(tmp, name)
		if err := os.WriteFile(scripts[name], data, 0o755); err != nil {
			return nil, err
		}
	}
	changelog := filepath.Join(tmp, "changelog.gz")
	if err := writeChangelog(changelog, dv, mtime.Format("Mon, 02 Jan 2006 15:04:05 -0700")); err != nil {
		return nil, err
	}
	contents = append(contents,
		&files.Content{Source: scripts["copyright"], Destination: "/usr/share/doc/edgefaas/copyright", FileInfo: &files.ContentFileInfo{Mode: 0o644}},
		&files.Content{Source: changelog, Destination: "/usr/share/doc/edgefaas/changelog.gz", FileInfo: &files.ContentFileInfo{Mode: 0o644}},
		&files.Content{Source: scripts["lintian-overrides"], Destination: "/usr/share/lintian/overrides/edgefaas", FileInfo: &files.ContentFileInfo{Mode: 0o644}},
	)

	info := &nfpm.Info{
		Name:          "edgefaas",
		Arch:          arch,
		Platform:      "linux",
		Version:       dv,
		VersionSchema: "none",
		Section:       "net",
		Priority:      "optional",
		Maintainer:    "edgefaas authors <edgefaas@users.noreply.github.com>",
		Homepage:      "https://github.com/edgefaas/edgefaas",
		License:       "Apache-2.0",
		Description: "Function-as-a-Service platform for private edge clouds\n" +
			"edgefaas runs WebAssembly functions on a core node (HTTP API, function\n" +
			"store, scheduler) and worker nodes that join it. One static binary is\n" +
			"the core, the worker and the command-line client; this package adds\n" +
			"systemd units for the core and the worker and their service user.",
		MTime: mtime,
		Overridables: nfpm.Overridables{
			Depends:  []string{"adduser"},
			Contents: contents,
			Scripts: nfpm.Scripts{
				PostInstall: scripts["postinst"],
				PreRemove:   scripts["prerm"],
				PostRemove:  scripts["postrm"],
			},
			Deb: nfpm.Deb{Compression: "xz"},
		},
	}
	return nfpm.WithDefaults(info), nil
}

// writeChangelog writes the one-entry Debian changelog of a native package,
// gzipped with no name or time in its header.
func writeChangelog(path, version, date string) error {
	var b bytes.Buffer
	zw, err := gzip.NewWriterLevel(&b, gzip.BestCompression)
	if err != nil {
		return err
	}
	entry := strings.Join([]string{
		fmt.Sprintf("edgefaas (%s) unstable; urgency=medium", version),
		"",
		"  * Release " + version + ": see https://github.com/edgefaas/edgefaas.",
		"",
		" -- edgefaas authors <edgefaas@users.noreply.github.com>  " + date,
		"",
	}, "\n")
	if _, err := zw.Write([]byte(entry)); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}
