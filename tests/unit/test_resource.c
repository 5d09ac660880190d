/* cloudbridge/meta/resource.c: the one table of cloud resource types. The ack rule is
 * CloudHub's noAckRequired (dispatcher/message_dispatcher.go, docs/kubeedge-wire.md §5.2) as the
 * router applied it before the table existed; remote-first is edgecore's list plus the node
 * special case of cloudcore v1.12-v1.22; the consumers are who took each type before.
 */
#include <check.h>

#include "kedge/msg.h"
#include "resource.h"
#include "unit.h"

static bool acked(const char *group, const char *op, const char *resource)
{
    struct kedge_msg m = {0};

    m.msg_id = "m1";
    m.source = "edgecontroller";
    m.group = (char *)group;
    m.operation = (char *)op;
    m.resource = (char *)resource;
    return resource_needs_ack(&m);
}

START_TEST(ack_rule)
{
    struct kedge_msg none = {0};

    ck_assert(acked("resource", "insert", "default/pod/p1"));
    ck_assert(acked("resource", "delete", "default/configmap/c1"));
    ck_assert(acked("resource", "update", "default/device/d1"));
    ck_assert(acked("resource", "update", "default/node/n1")); /* node: update only */
    ck_assert(!acked("resource", "patch", "default/node/n1"));
    ck_assert(!acked("resource", "response", "default/pod/p1"));
    ck_assert(!acked("user", "publish", "a/b"));
    ck_assert(!acked("resource", "update", "kube-node-lease/lease/n1"));
    ck_assert(!acked("resource", "update", "default/nodepatch/n1"));
    ck_assert(!acked("resource", "update", "default/podpatch/p1"));
    ck_assert(!acked("resource", "update", "default/podstatus/p1"));
    ck_assert(!acked("resource", "update", "default/certificatesigningrequest/c"));
    /* the names CloudHub finds anywhere in the resource */
    ck_assert(!acked("resource", "update", "default/podlist"));
    ck_assert(!acked("twin", "update", "membership"));
    ck_assert(!acked("twin", "update", "device/d1/twin/cloud_updated"));
    ck_assert(!acked("resource", "query", "default/serviceaccounttoken/t"));
    ck_assert(!acked("resource", "query", "default/k8s/ca.crt"));
    /* a type element that only starts like one of them is its own type */
    ck_assert(acked("resource", "update", "default/leases/x"));
    ck_assert(!resource_needs_ack(&none)); /* no msg_id: nothing to answer */
}
END_TEST

START_TEST(remote_first)
{
    ck_assert(resource_remote_first("configmap", "null"));
    ck_assert(resource_remote_first("secret", "default"));
    ck_assert(resource_remote_first("k8s/ca.crt", "null"));
    ck_assert(!resource_remote_first("pod", "default"));
    ck_assert(!resource_remote_first("nosuchtype", "default"));
    ck_assert(resource_remote_first("node", "default")); /* cloudcore v1.12-v1.22 */
    ck_assert(!resource_remote_first("node", "null"));
}
END_TEST

START_TEST(consumers_and_store)
{
    char type[16];

    ck_assert(resource_wants_edged("pod"));
    ck_assert(resource_wants_edged("configmap"));
    ck_assert(resource_wants_edged("secret"));
    ck_assert(!resource_wants_edged("node"));
    ck_assert(resource_for_devices("device"));
    ck_assert(resource_for_devices("devicemodel"));
    ck_assert(!resource_for_devices("pod"));
    ck_assert(resource_delete_by_uid("pod"));
    ck_assert(!resource_delete_by_uid("configmap"));
    ck_assert(!resource_reply_stored("nodepatch"));
    ck_assert(!resource_reply_stored("podpatch"));
    ck_assert(resource_reply_stored("node"));
    ck_assert(resource_reply_stored("nosuchtype"));
    ck_assert_ptr_null(resource_find("nosuchtype"));
    ck_assert_str_eq(resource_find("lease")->type, "lease");
    ck_assert_int_eq(resource_type_of("default/pod/p1", type, sizeof(type)), 0);
    ck_assert_str_eq(type, "pod");
    ck_assert_int_eq(resource_type_of("default/configmap", type, sizeof(type)), 0);
    ck_assert_str_eq(type, "configmap");
    ck_assert_int_eq(resource_type_of("membership", type, sizeof(type)), -1);
    ck_assert_int_eq(resource_type_of("ns/averyveryverylongtype/x", type, sizeof(type)), -1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("resource");
    TCase *tc = tcase_create("table");

    tcase_add_test(tc, ack_rule);
    tcase_add_test(tc, remote_first);
    tcase_add_test(tc, consumers_and_store);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
