// Decodes a pprof profile with github.com/google/pprof/profile, the package
// `go tool pprof` itself is built on (Parse checks the profile as it reads
// it), and prints it as JSON for tests/formats.rs.
//
// Built by scripts/consumers against the copy of that package that Debian's
// Go toolchain vendors; no network.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/google/pprof/profile"
)

func main() {
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	p, err := profile.Parse(f)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pprof:", err)
		os.Exit(1)
	}
	if err := json.NewEncoder(os.Stdout).Encode(p); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
