// Command pulumi-resource-command is styx's own implementation of the subset
// of the Pulumi "command" provider (package version 1.2.1) that styx uses.
// See README.md for why it exists and how it differs from upstream.
package main

import (
	"fmt"
	"os"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/provider"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// version is reported by GetPluginInfo; override with
// -ldflags "-X main.version=1.2.1".
var version = "1.2.1"

const packageName = "command"

func main() {
	err := provider.Main(packageName, func(host *provider.HostClient) (pulumirpc.ResourceProviderServer, error) {
		return newProvider(newHostLogger(host)), nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
