package main

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/vispyr/vispyr/internal/auth"
)

const authUsage = `Usage: vispyr auth <command>

Commands:
  new-token       print a random token and the sha256 to put in auth.tokens
  hash-token      read a token on stdin, print the sha256 for auth.tokens
  hash-password   read a password on stdin, print the bcrypt hash for auth.users
`

// authCmd prints the hashes that the auth: section stores. Secrets come on
// stdin, not as arguments, so they stay out of shell history and ps.
func authCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprint(stderr, authUsage)
		return 2
	}
	switch args[0] {
	case "new-token":
		tok := auth.NewToken()
		fmt.Fprintf(stdout, "token:  %s\nsha256: %s\n", tok, auth.HashToken(tok))
		return 0
	case "hash-token", "hash-password":
	default:
		fmt.Fprintf(stderr, "unknown auth command %q\n\n%s", args[0], authUsage)
		return 2
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && err != io.EOF {
		fmt.Fprintln(stderr, "vispyr auth: read stdin:", err)
		return 1
	}
	secret := strings.TrimRight(line, "\r\n")
	if secret == "" {
		fmt.Fprintln(stderr, "vispyr auth: nothing on stdin: pipe the secret in, e.g. printf '%s' \"$SECRET\" | vispyr auth "+args[0])
		return 2
	}
	if args[0] == "hash-token" {
		fmt.Fprintln(stdout, auth.HashToken(secret))
		return 0
	}
	h, err := auth.HashPassword(secret)
	if err != nil {
		fmt.Fprintln(stderr, "vispyr auth:", err)
		return 1
	}
	fmt.Fprintln(stdout, h)
	return 0
}
