/* A minimal control point built on Debian's libupnp (pupnp), written against its public API
 * only: it subscribes to one event URL with UpnpSubscribe and prints every event it receives
 * as "EVENT <seq> <name>=<value>..." lines, then unsubscribes. Used by interop_publisher.sh
 * to check that uvgena's Publisher works with a control point nobody here wrote.
 *
 * Usage: libupnp_subscriber IFACE EVENT_URL COUNT TIMEOUT_SECONDS
 * Exit: 0 when COUNT events arrived in order from SEQ 0, 1 otherwise. */
#include <upnp/ixml.h>
#include <upnp/upnp.h>
#include <upnp/upnptools.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t arrived = PTHREAD_COND_INITIALIZER;
static int received = 0;
static int in_order = 1;

static int on_event(Upnp_EventType type, const void *event, void *cookie) {
    (void)cookie;
    if (type != UPNP_EVENT_RECEIVED) return 0;
    const UpnpEvent *e = (const UpnpEvent *)event;
    int seq = UpnpEvent_get_EventKey(e);
    IXML_Document *vars = UpnpEvent_get_ChangedVariables(e);
    pthread_mutex_lock(&lock);
    if (seq != received) in_order = 0;
    printf("EVENT %d", seq);
    IXML_NodeList *props = ixmlDocument_getElementsByTagName(vars, "e:property");
    if (props == NULL) props = ixmlDocument_getElementsByTagName(vars, "property");
    unsigned long n = props == NULL ? 0 : ixmlNodeList_length(props);
    for (unsigned long i = 0; i < n; ++i) {
        IXML_Node *var = ixmlNode_getFirstChild(ixmlNodeList_item(props, i));
        if (var == NULL) continue;
        IXML_Node *text = ixmlNode_getFirstChild(var);
        const char *value = text == NULL ? "" : ixmlNode_getNodeValue(text);
        printf(" %s=%zu", ixmlNode_getNodeName(var), value == NULL ? (size_t)0 : strlen(value));
    }
    if (props != NULL) ixmlNodeList_free(props);
    printf("\n");
    fflush(stdout);
    ++received;
    pthread_cond_broadcast(&arrived);
    pthread_mutex_unlock(&lock);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: libupnp_subscriber IFACE EVENT_URL COUNT TIMEOUT_SECONDS\n");
        return 2;
    }
    const char *iface = argv[1];
    const char *url = argv[2];
    int want = atoi(argv[3]);
    int limit = atoi(argv[4]);
    int rc = UpnpInit2(iface, 0);
    if (rc != UPNP_E_SUCCESS) {
        fprintf(stderr, "UpnpInit2(%s): %s\n", iface, UpnpGetErrorMessage(rc));
        return 1;
    }
    UpnpClient_Handle handle = -1;
    rc = UpnpRegisterClient(on_event, NULL, &handle);
    if (rc != UPNP_E_SUCCESS) {
        fprintf(stderr, "UpnpRegisterClient: %s\n", UpnpGetErrorMessage(rc));
        UpnpFinish();
        return 1;
    }
    int timeout = 300;
    Upnp_SID sid;
    rc = UpnpSubscribe(handle, url, &timeout, sid);
    if (rc != UPNP_E_SUCCESS) {
        fprintf(stderr, "UpnpSubscribe(%s): %s\n", url, UpnpGetErrorMessage(rc));
        UpnpFinish();
        return 1;
    }
    printf("SUBSCRIBED %s %d\n", sid, timeout);
    fflush(stdout);

    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += limit;
    pthread_mutex_lock(&lock);
    while (received < want) {
        if (pthread_cond_timedwait(&arrived, &lock, &deadline) != 0) break;
    }
    int ok = received >= want && in_order;
    pthread_mutex_unlock(&lock);

    rc = UpnpUnSubscribe(handle, sid);
    printf("UNSUBSCRIBED %s\n", rc == UPNP_E_SUCCESS ? "ok" : UpnpGetErrorMessage(rc));
    fflush(stdout);
    UpnpUnRegisterClient(handle);
    UpnpFinish();
    return ok && rc == UPNP_E_SUCCESS ? 0 : 1;
}
