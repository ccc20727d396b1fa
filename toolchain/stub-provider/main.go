// Command stub-provider is a PREVIEW-ONLY test double for the Pulumi aws, gcp
// and tls resource providers. It is never a real provider: it answers the
// engine's gRPC calls well enough for `pulumi preview` (and policy packs run by
// it) to work on stacks whose real providers cannot be installed here, and it
// refuses every create or update outside a preview.
//
// One binary serves every package: it is installed under several plugin names
// and versions (`pulumi plugin install resource aws 7.51.1 --file <bin>`), and
// takes its package name from argv[0] (`pulumi-resource-<name>`) and its
// version from its install directory (`resource-<name>-v<version>`). See
// README.md.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/provider"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// Environment overrides, for running the binary outside a plugin directory.
const (
	envName    = "STYX_STUB_PROVIDER_NAME"
	envVersion = "STYX_STUB_PROVIDER_VERSION"
)

// fallbackVersion is reported when neither the install directory nor the
// environment names a version.
const fallbackVersion = "0.0.0-styx-stub"

func main() {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	name, version, err := identity(os.Args[0], exe, os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	err = provider.Main(name, func(host *provider.HostClient) (pulumirpc.ResourceProviderServer, error) {
		return newStub(name, version), nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// identity works out which package (aws, gcp, tls...) and version this
// process stands in for: the name from argv[0] (`pulumi-resource-<name>`, as
// the engine starts it) else $STYX_STUB_PROVIDER_NAME; the version from the
// plugin directory the executable lives in (`resource-<name>-v<version>`, as
// `pulumi plugin install` lays it out) else $STYX_STUB_PROVIDER_VERSION.
func identity(argv0, exe string, getenv func(string) string) (name, version string, err error) {
	base := filepath.Base(argv0)
	if n, ok := strings.CutPrefix(base, "pulumi-resource-"); ok && n != "" {
		name = n
	} else if n := getenv(envName); n != "" {
		name = n
	} else {
		return "", "", fmt.Errorf("styx stub provider: cannot tell which package to stand in for: run it as "+
			"pulumi-resource-<name> (pulumi plugin install resource <name> <version> --file %s) or set %s",
			argv0, envName)
	}
	for _, p := range []string{exe, argv0} {
		dir := filepath.Base(filepath.Dir(p))
		if v, ok := strings.CutPrefix(dir, "resource-"+name+"-v"); ok && v != "" {
			return name, v, nil
		}
	}
	if v := getenv(envVersion); v != "" {
		return name, v, nil
	}
	return name, fallbackVersion, nil
}
