package main

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// archiveFile is one file of a release archive: its name inside the
// archive's top directory and where it comes from.
type archiveFile struct {
	name, src string
	mode      int64
}

// runArchive writes edgefaas-VERSION-OS-ARCH.tar.gz (.zip for windows):
// the binary, LICENSE, README.md and the systemd units with their settings.
func runArchive(args []string) error {
	fs := flag.NewFlagSet("archive", flag.ContinueOnError)
	version := fs.String("version", "", "release version")
	goos := fs.String("os", "linux", "target OS")
	arch := fs.String("arch", "", "target architecture as named in the file (amd64, arm64, armv7)")
	binary := fs.String("binary", "", "the edgefaas binary for that platform")
	root := fs.String("root", ".", "the repository root")
	out := fs.String("out", "dist", "output directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *version == "" || *arch == "" || *binary == "" {
		return errors.New("-version, -arch and -binary are required")
	}
	base := fmt.Sprintf("edgefaas-%s-%s-%s", *version, *goos, *arch)
	exe := "edgefaas"
	if *goos == "windows" {
		exe += ".exe"
	}
	files := []archiveFile{
		{exe, *binary, 0o755},
		{"LICENSE", filepath.Join(*root, "LICENSE"), 0o644},
		{"README.md", filepath.Join(*root, "README.md"), 0o644},
	}
	if *goos == "linux" {
		units, err := filepath.Glob(filepath.Join(*root, "deploy/systemd/*"))
		if err != nil {
			return err
		}
		for _, u := range units {
			files = append(files, archiveFile{"systemd/" + filepath.Base(u), u, 0o644})
		}
	}
	mtime := sourceDate()
	var path string
	var err error
	if *goos == "windows" {
		path = filepath.Join(*out, base+".zip")
		err = writeZip(path, base, files, mtime)
	} else {
		path = filepath.Join(*out, base+".tar.gz")
		err = writeTarGz(path, base, files, mtime)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	fmt.Println(path)
	return nil
}

func writeTarGz(path, dir string, files []archiveFile, mtime time.Time) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755, ModTime: mtime}); err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, a := range files {
		if sub := filepath.Dir(a.name); sub != "." && !seen[sub] {
			seen[sub] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/" + sub + "/", Mode: 0o755, ModTime: mtime}); err != nil {
				return err
			}
		}
		data, err := os.ReadFile(a.src)
		if err != nil {
			return err
		}
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: dir + "/" + a.name, Mode: a.mode, Size: int64(len(data)), ModTime: mtime}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

func writeZip(path, dir string, files []archiveFile, mtime time.Time) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	zw := zip.NewWriter(f)
	if dos := time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC); mtime.Before(dos) {
		mtime = dos // zip's MS-DOS times begin in 1980
	}
	for _, a := range files {
		src, err := os.Open(a.src)
		if err != nil {
			return err
		}
		hdr := &zip.FileHeader{Name: dir + "/" + a.name, Method: zip.Deflate, Modified: mtime}
		hdr.SetMode(os.FileMode(a.mode))
		w, err := zw.CreateHeader(hdr)
		if err == nil {
			_, err = io.Copy(w, src)
		}
		src.Close()
		if err != nil {
			return err
		}
	}
	return zw.Close()
}
