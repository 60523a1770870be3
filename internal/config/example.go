package config

import _ "embed"

//go:embed example.yaml
var example string

// Example returns a complete configuration file, commented, with every key
// set to its default. Parsing it yields Default().
func Example() string { return example }
