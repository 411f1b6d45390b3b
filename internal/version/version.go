// Package version holds build information, set with -ldflags at release time.
package version

import "runtime"

// Set by -ldflags "-X github.com/vispyr/vispyr/internal/version.Version=..." in releases.
var (
	Version   = "0.1.0"
	Revision  = "dev"
	Branch    = "main"
	BuildUser = "vispyr"
	BuildDate = ""
)

// GoVersion is the Go release the binary was built with.
var GoVersion = runtime.Version()
