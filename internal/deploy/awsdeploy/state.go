package awsdeploy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// State records what a deploy created, saved after every step: a re-run
// creates only what is missing, destroy removes only what is listed.
type State struct {
	Version int    `json:"version"`
	Name    string `json:"name"`
	Region  string `json:"region"`

	Bucket          string   `json:"bucket,omitempty"`
	LifecycleDays   int32    `json:"lifecycle_days,omitempty"`
	Role            string   `json:"role,omitempty"`
	RolePolicy      string   `json:"role_policy,omitempty"`
	InstanceProfile string   `json:"instance_profile,omitempty"`
	ProfileHasRole  bool     `json:"profile_has_role,omitempty"`
	SecurityGroup   string   `json:"security_group,omitempty"`
	AllowCIDRs      []string `json:"allow_cidrs,omitempty"`
	AllocationID    string   `json:"allocation_id,omitempty"`
	PublicIP        string   `json:"public_ip,omitempty"`
	Instance        string   `json:"instance,omitempty"`
	Image           string   `json:"image,omitempty"`
	BinarySHA256    string   `json:"binary_sha256,omitempty"` // what the instance installed at first boot
	Association     string   `json:"association,omitempty"`

	Domain      string `json:"domain,omitempty"`
	TokenSHA256 string `json:"token_sha256,omitempty"`
	AdminUser   string `json:"admin_user,omitempty"`
	Bcrypt      string `json:"bcrypt,omitempty"`

	path string
}

func statePath(dir, name string) string { return filepath.Join(dir, "aws-"+name+".json") }

// loadState reads the state file; a missing one is an empty state.
func loadState(dir, name string) (*State, error) {
	p := statePath(dir, name)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return &State{Version: 1, Name: name, path: p}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	s := &State{path: p}
	if err := json.Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("parse state %s: %w", p, err)
	}
	return s, nil
}

// empty says whether the state lists no AWS resource.
func (s *State) empty() bool {
	return s.Bucket == "" && s.Role == "" && s.InstanceProfile == "" && s.SecurityGroup == "" &&
		s.AllocationID == "" && s.Instance == ""
}

// save writes the state atomically (it holds the password's hash: mode 600).
func (s *State) save() error {
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return fmt.Errorf("create state directory: %w", err)
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := s.path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	return nil
}

// remove deletes the state file once nothing it lists exists any more.
func (s *State) remove() error {
	if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove state: %w", err)
	}
	return nil
}
