//go:build tools

// Package tools records the commands scripts/testbin builds from this module.
package tools

import (
	_ "github.com/minio/minio"
)
