// Command dist makes edgefaas's release artifacts from binaries already
// built (scripts/dist.sh builds them and runs it): the archives, the Debian
// packages, the OCI image and the checksums. It is a module of its own so
// that nfpm and go-containerregistry stay out of the product's go.mod
// (docs/RATIONALE.md#why-packaging-is-a-separate-module).
//
//	dist archive -version V -os linux -arch amd64 -binary B -root R -out DIR
//	dist deb     -version V -arch amd64 -binary B -root R -out DIR
//	dist image   -version V -name edgefaas -binary linux/amd64=B ... -layout DIR -tar FILE
//	dist sums    DIR
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "archive":
		err = runArchive(os.Args[2:])
	case "deb":
		err = runDeb(os.Args[2:])
	case "image":
		err = runImage(os.Args[2:])
	case "sums":
		err = runSums(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "dist %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: dist archive|deb|image|sums [flags] (see the package comment)")
	os.Exit(2)
}
