package logs

import "slices"

// ServiceNameSources are the labels service_name is discovered from when a
// stream has none, in order (Loki's discover_service_name).
func ServiceNameSources() []string { return slices.Clone(serviceNameSources) }

// LevelSources are the names detected_level is read from before the line
// itself (Loki's log_level_fields).
func LevelSources() []string { return slices.Clone(levelSources) }
