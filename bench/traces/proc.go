package main

import (
	"path/filepath"
	"strings"
)

// diskGroup names the directory one level under the data dir a file is in.
func diskGroup(rel string) string {
	top := strings.Split(rel, string(filepath.Separator))[0]
	if top == rel {
		top = "."
	}
	return top + "/"
}
