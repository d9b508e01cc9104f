// Package nbops is kovn's one way to write the OVN northbound database.
//
// Controllers compute the NB rows they want as a pure function of their
// inputs; the builders here (EnsureSwitch, EnsureSwitchPort, ...) compare
// that desired state with the libovsdb cache and return the minimal
// operations to get there: none at all when the cache already matches, so
// a restarted, converged controller sends zero transactions. A Transactor
// sends the operations, alone (Transact) or merged with other callers'
// (TransactBatched).
//
// Builders own a fixed set of columns of each row and compare them as
// OVSDB does: sets ignore order and duplicates, nil and empty maps or sets
// are the same, optional columns compare by value. external_ids is always
// owned and replaced as a whole map; ownership lives in it under
// the keys of package ownership. Columns a builder does not own are
// neither written nor compared:
//
//	EnsureSwitch       other_config, external_ids, load_balancer_group
//	EnsureSwitchPort   type, addresses, port_security, options, external_ids,
//	                   tag_request, enabled; membership in one switch's ports
//	EnsureRouter       options, external_ids, enabled, load_balancer_group
//	EnsureRouterPort   mac, networks, options, external_ids, enabled;
//	                   membership in one router's ports
//	EnsureStaticRoutes per owner, the set of a router's static_routes
//	                   (identity ip_prefix, nexthop, policy, output_port,
//	                   route_table; external_ids, options, bfd in place)
//	EnsureNATs         per owner, the set of a router's nat (identity type,
//	                   logical_ip, external_ip, logical_port; the rest in place)
//	EnsureAddressSet   addresses, external_ids
//	EnsureLoadBalancer vips, protocol, options, selection_fields, external_ids
//	EnsureLoadBalancerGroup  nothing but its existence (no external_ids
//	                   in NB 7.0.0); members through LoadBalancerGroupAdd/Remove
//	EnsurePortGroup    external_ids; ports through PortGroupAdd/Remove/SetPorts
//	EnsurePortGroupACLs per group, its acls keyed by external_ids kovn.io/id
//	                   (action, direction, match, priority, name, label, log,
//	                   severity, meter, options, external_ids)
//	EnsureMeter        unit, fair, external_ids and its bands
//	EnsureChassisTemplateVar only the given keys of variables
//
// Membership mutations (AddressSetAdd/Remove, LoadBalancerGroupAdd/Remove,
// Switch/RouterLoadBalancersAdd/Remove, PortGroupAddPorts/RemovePorts)
// send one mutate of exactly what the cache says is missing or present, so
// concurrent writers of other members are not overwritten. A set several
// writers add to is created with CreateAddressSet, which only inserts:
// EnsureAddressSet would replace the members of a set that appeared since
// the caller found it missing.
//
// Builders return the UUID a later builder in the same transaction refers
// to the row by: the real one when the row exists, or a deterministic
// named UUID when it will be inserted. Build every op list from one cache
// state and send it as one transaction; the Transactor then waits until
// the cache shows the rows it inserted and deleted, so the next round of
// builders sees them.
//
// GetSwitch, GetRouter, GetAddressSet, GetPortGroup, GetLoadBalancer and
// GetLoadBalancerGroup read one row by name from the cache; Owned lists a kind's rows for start-up garbage collection.
//
// Clients should be built with ClientDBModel (NewClient does), whose client
// indexes make lookups of switches, routers and load balancers by name map lookups rather
// than table scans.
package nbops
