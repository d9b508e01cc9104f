// Package namespace keeps one address set per namespace and IP family.
// Membership belongs to the pod controller (each pod adds and removes its
// own address in the same transaction as its port); this controller makes
// sure the set exists for every namespace — policies refer to it even when
// the namespace has no pod — and removes it when the namespace goes.
package namespace

import (
	"context"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	corelisters "k8s.io/client-go/listers/core/v1"

	"github.com/kovn-io/kovn/go-controller/pkg/controller/queue"
	"github.com/kovn-io/kovn/go-controller/pkg/nbops"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdb/nbdb"
	own "github.com/kovn-io/kovn/go-controller/pkg/ownership"
)

// Families are the address families kovn keeps sets for.
func Families() []string { return []string{"v4"} }

// Controller owns namespace address sets (but not their members).
type Controller struct {
	namespaces corelisters.NamespaceLister
	nb         client.Client
	tx         *nbops.Transactor
	Queue      *queue.Controller
}

// New builds the controller.
func New(namespaces corelisters.NamespaceLister, nb client.Client, tx *nbops.Transactor, workers int, qm *queue.Metrics) *Controller {
	c := &Controller{namespaces: namespaces, nb: nb, tx: tx}
	c.Queue = queue.New("namespace", workers, qm, c.sync)
	return c
}

// Start deletes the sets of namespaces that no longer exist.
func (c *Controller) Start(ctx context.Context) error {
	var ops []ovsdb.Operation
	for _, as := range nbops.Owned[nbdb.AddressSet](c.nb, own.KindNamespace) {
		_, ns := own.OwnerOf(as.ExternalIDs)
		if _, err := c.namespaces.Get(ns); apierrors.IsNotFound(err) {
			del, err := nbops.DeleteAddressSet(c.nb, as.Name)
			if err != nil {
				return err
			}
			ops = append(ops, del...)
		}
	}
	return c.tx.Transact(ctx, "address sets of deleted namespaces", ops)
}

func (c *Controller) sync(ctx context.Context, ns string) error {
	n, err := c.namespaces.Get(ns)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	var ops []ovsdb.Operation
	for _, fam := range Families() {
		name := own.NamespaceAddressSet(ns, fam)
		if n == nil || n.DeletionTimestamp != nil {
			del, err := nbops.DeleteAddressSet(c.nb, name)
			if err != nil {
				return err
			}
			ops = append(ops, del...)
			continue
		}
		if _, err := nbops.GetAddressSet(c.nb, name); err == nil {
			continue // exists: its members are the pods' business
		}
		// Created, never ensured: a set a pod sync made since the lookup
		// would be updated to no members. A plain insert is refused by the
		// name index instead, and the retry finds the set.
		add, _, err := nbops.CreateAddressSet(c.nb, &nbdb.AddressSet{Name: name, ExternalIDs: own.IDs(own.KindNamespace, ns, fam)})
		if err != nil {
			return err
		}
		ops = append(ops, add...)
	}
	return c.tx.Transact(ctx, "namespace "+ns, ops)
}
