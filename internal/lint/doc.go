// Package lint holds the repository's rule tests: tests that read the
// source tree rather than run it, such as which package may import which
// (deps_test.go). It has no code of its own.
package lint
