package main

import "github.com/pulumi/pulumi/sdk/v3/go/common/resource"

// typeOutputs lists, for the resource types the styx backends register, the
// outputs a real provider computes. In a preview the stub reports them as
// unknown, like a real provider would:
//   - computed: output-only properties, added as unknown when not an input;
//   - filled:   inputs the provider completes with computed parts (a GCP
//     instance's networkInterfaces gain networkIp/natIp), replaced by unknown.
//
// Types not listed get their inputs back and nothing else; the Python SDK
// treats any output missing from a preview as unknown anyway, so the table
// only matters for `filled` inputs and for what the preview displays.
type typeOutputs struct {
	computed []string
	filled   []string
}

var outputsByType = map[string]typeOutputs{
	// aws (components/backends/aws.py)
	"aws:ec2/vpc:Vpc":                                           {computed: []string{"arn", "defaultSecurityGroupId", "mainRouteTableId", "ownerId"}},
	"aws:ec2/internetGateway:InternetGateway":                   {computed: []string{"arn", "ownerId"}},
	"aws:ec2/routeTable:RouteTable":                             {computed: []string{"arn", "ownerId"}},
	"aws:ec2/subnet:Subnet":                                     {computed: []string{"arn", "ownerId"}},
	"aws:ec2/securityGroup:SecurityGroup":                       {computed: []string{"arn", "ownerId"}},
	"aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": {computed: []string{"arn", "securityGroupRuleId"}},
	"aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule":   {computed: []string{"arn", "securityGroupRuleId"}},
	"aws:ec2/keyPair:KeyPair":                                   {computed: []string{"arn", "keyName", "keyPairId", "fingerprint", "keyType"}},
	"aws:ec2/placementGroup:PlacementGroup":                     {computed: []string{"arn", "name", "placementGroupId"}},
	"aws:ec2/instance:Instance": {computed: []string{
		"arn", "publicIp", "privateIp", "publicDns", "privateDns", "primaryNetworkInterfaceId",
		"instanceState", "outpostArn", "passwordData", "keyName", "availabilityZone", "subnetId",
	}},
	// gcp (components/backends/gcp.py)
	"gcp:compute/network:Network":       {computed: []string{"selfLink", "gatewayIpv4", "numericId", "name"}},
	"gcp:compute/subnetwork:Subnetwork": {computed: []string{"selfLink", "gatewayAddress", "creationTimestamp", "name"}},
	"gcp:compute/firewall:Firewall":     {computed: []string{"selfLink", "creationTimestamp", "name"}},
	"gcp:serviceaccount/account:Account": {computed: []string{
		"email", "name", "uniqueId", "member", "project",
	}},
	"gcp:compute/instance:Instance": {
		computed: []string{"instanceId", "selfLink", "cpuPlatform", "currentStatus", "labelFingerprint",
			"metadataFingerprint", "tagsFingerprint", "name", "project"},
		filled: []string{"networkInterfaces", "bootDisk"},
	},
	// tls (components/keys.py)
	"tls:index/privateKey:PrivateKey": {computed: []string{
		"privateKeyPem", "privateKeyOpenssh", "privateKeyPemPkcs8", "publicKeyPem", "publicKeyOpenssh",
		"publicKeyFingerprintMd5", "publicKeyFingerprintSha256",
	}},
}

func unknown() resource.PropertyValue { return resource.MakeComputed(resource.NewProperty("")) }

// withComputedOutputs returns the preview state of a resource of type typ.
func withComputedOutputs(typ string, inputs resource.PropertyMap) resource.PropertyMap {
	out := inputs.Copy()
	t := outputsByType[typ]
	for _, k := range t.computed {
		key := resource.PropertyKey(k)
		if v, ok := out[key]; !ok || v.IsNull() {
			out[key] = unknown()
		}
	}
	for _, k := range t.filled {
		if _, ok := out[resource.PropertyKey(k)]; ok {
			out[resource.PropertyKey(k)] = unknown()
		}
	}
	return out
}
