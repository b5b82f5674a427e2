import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { createPublicKey, verify } from "node:crypto";
import { AuthenticationV1Api, AuthorizationV1Api, CoreV1Api, PatchStrategy, RbacAuthorizationV1Api, setHeaderOptions, type V1SubjectAccessReviewStatus } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "../support/index.js";
import { startFakeKube, type FakeKube } from "./index.js";

const KUBECTL = join(ROOT, ".tools/bin/kubectl");
const RBAC = "rbac.authorization.k8s.io";

// The stand-in's ServiceAccount tokens, TokenReview, SubjectAccessReview and RBAC, over HTTP through the real
// @kubernetes/client-node, as the run API will call them (and kubectl auth can-i, which sends a SelfSubjectAccessReview).
describe("the Kubernetes stand-in's authentication and authorization", () => {
  let fake: FakeKube;
  let authn: AuthenticationV1Api;
  let authz: AuthorizationV1Api;
  let core: CoreV1Api;
  let rbac: RbacAuthorizationV1Api;

  const review = async (token: string, audiences?: string[]) =>
    (await authn.createTokenReview({ body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", spec: { token, ...(audiences ? { audiences } : {}) } } })).status!;
  const sar = async (user: string, groups: string[], attrs: { namespace?: string; verb: string; group?: string; resource: string; subresource?: string; name?: string }): Promise<V1SubjectAccessReviewStatus> =>
    (await authz.createSubjectAccessReview({ body: { apiVersion: "authorization.k8s.io/v1", kind: "SubjectAccessReview", spec: { user, groups, resourceAttributes: attrs } } })).status!;
  const saUser = (ns: string, name: string) => ({ user: `system:serviceaccount:${ns}:${name}`, groups: ["system:serviceaccounts", `system:serviceaccounts:${ns}`, "system:authenticated"] });

  beforeAll(async () => {
    fake = await startFakeKube();
    const kc = fake.kubeConfig();
    authn = kc.makeApiClient(AuthenticationV1Api);
    authz = kc.makeApiClient(AuthorizationV1Api);
    core = kc.makeApiClient(CoreV1Api);
    rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    for (const ns of ["a", "b"]) await core.createNamespace({ body: { metadata: { name: ns } } });
    await core.createNamespacedServiceAccount({ namespace: "a", body: { metadata: { name: "app" } } });
  });
  afterAll(async () => {
    await fake?.close();
  });

  describe("tokens and TokenReview", () => {
    it("a TokenRequest gives a signed JWT with the claims the real server puts in, and its review names the ServiceAccount", async () => {
      const sa = await core.readNamespacedServiceAccount({ namespace: "a", name: "app" });
      const tr = await core.createNamespacedServiceAccountToken({ namespace: "a", name: "app", body: { spec: { audiences: ["offload"], expirationSeconds: 600 } } });
      const token = tr.status!.token;
      const [head, body, sig] = token.split(".") as [string, string, string];
      const claims = JSON.parse(Buffer.from(body, "base64url").toString()) as Record<string, unknown>;
      expect(claims).toMatchObject({
        aud: ["offload"],
        iss: fake.auth.issuer,
        sub: "system:serviceaccount:a:app",
        "kubernetes.io": { namespace: "a", serviceaccount: { name: "app", uid: sa.metadata!.uid } },
      });
      expect((claims.exp as number) - (claims.iat as number)).toBe(600);
      expect(claims.nbf).toBe(claims.iat);
      expect(new Date(tr.status!.expirationTimestamp).getTime()).toBe((claims.exp as number) * 1000);
      expect(JSON.parse(Buffer.from(head, "base64url").toString())).toMatchObject({ alg: "RS256" });
      expect(verify("sha256", Buffer.from(`${head}.${body}`), createPublicKey(fake.auth.publicKeyPem), Buffer.from(sig, "base64url"))).toBe(true);

      const status = await review(token, ["offload"]);
      expect(status.authenticated).toBe(true);
      expect(status.audiences).toEqual(["offload"]);
      expect(status.user).toEqual({
        username: "system:serviceaccount:a:app",
        uid: sa.metadata!.uid,
        groups: ["system:serviceaccounts", "system:serviceaccounts:a", "system:authenticated"],
        extra: { "authentication.kubernetes.io/credential-id": [`JTI=${claims.jti as string}`] },
      });
    });

    it("a TokenRequest refuses less than 10 minutes (422) and a missing ServiceAccount (404), as the real server does", async () => {
      const short = core.createNamespacedServiceAccountToken({ namespace: "a", name: "app", body: { spec: { audiences: ["offload"], expirationSeconds: 599 } } });
      await expect(short).rejects.toMatchObject({ code: 422 });
      await expect(short.catch((e: { body: string }) => JSON.parse(e.body) as { message: string })).resolves.toMatchObject({
        message: 'TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 10 minutes',
      });
      await expect(core.createNamespacedServiceAccountToken({ namespace: "a", name: "nobody", body: { spec: { audiences: ["offload"] } } })).rejects.toMatchObject({ code: 404 });
    });

    it("without audiences a token is for the API server, and a review without audiences checks the API server's", async () => {
      const tr = await core.createNamespacedServiceAccountToken({ namespace: "a", name: "app", body: { spec: { audiences: [] } } });
      const status = await review(tr.status!.token);
      expect(status.authenticated).toBe(true);
      expect(status.audiences).toEqual([fake.auth.issuer]);
    });

    it("a wrong audience, an expired token, a malformed one and a forged one are not authenticated, with the real server's error", async () => {
      const wrong = fake.issueToken("a", "app", { audiences: ["other"] });
      expect(await review(wrong, ["offload"])).toEqual({ authenticated: false, user: {}, error: '[invalid bearer token, token audiences ["other"] is invalid for the target audiences ["offload"]]' });

      // Expired by more than go-jose's minute of leeway.
      const expired = fake.issueToken("a", "app", { audiences: ["offload"], expirationSeconds: 600, issuedAt: new Date(Date.now() - 700_000) });
      expect(await review(expired, ["offload"])).toEqual({ authenticated: false, user: {}, error: "[invalid bearer token, service account token has expired]" });

      expect(await review("not-a-jwt", ["offload"])).toEqual({ authenticated: false, user: {}, error: "invalid bearer token" });

      const good = fake.issueToken("a", "app", { audiences: ["offload"] });
      const [h, b] = good.split(".") as [string, string];
      const claims = JSON.parse(Buffer.from(b, "base64url").toString()) as Record<string, unknown>;
      const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, sub: "system:serviceaccount:kube-system:admin" })).toString("base64url")}.${good.split(".")[2]!}`;
      const f = await review(forged, ["offload"]);
      expect(f.authenticated).toBe(false);
      expect(f.error).toMatch(/^\[invalid bearer token, .*cryptographic primitive\]$/);
    });

    it("a token of a deleted ServiceAccount is refused, and so is one of a ServiceAccount deleted and made again (uid mismatch)", async () => {
      await core.createNamespacedServiceAccount({ namespace: "b", body: { metadata: { name: "gone" } } });
      const token = fake.issueToken("b", "gone", { audiences: ["offload"] });
      const before = (await core.readNamespacedServiceAccount({ namespace: "b", name: "gone" })).metadata!.uid!;
      await core.deleteNamespacedServiceAccount({ namespace: "b", name: "gone" });
      expect(await review(token, ["offload"])).toEqual({ authenticated: false, user: {}, error: '[invalid bearer token, serviceaccounts "gone" not found]' });
      const again = await core.createNamespacedServiceAccount({ namespace: "b", body: { metadata: { name: "gone" } } });
      expect(await review(token, ["offload"])).toEqual({
        authenticated: false,
        user: {},
        error: `[invalid bearer token, service account UID (${again.metadata!.uid!}) does not match claim (${before})]`,
      });
    });

    it("a TokenReview without a token is a 400, and the reviews are create-only", async () => {
      await expect(authn.createTokenReview({ body: { spec: {} } })).rejects.toMatchObject({ code: 400 });
      const res = await fetch(`${fake.url}/apis/authentication.k8s.io/v1/tokenreviews`);
      expect(res.status).toBe(405);
    });
  });

  describe("SubjectAccessReview and RBAC", () => {
    beforeAll(async () => {
      // A chart-like ClusterRole aggregated into the built-in edit role, and one bound directly.
      await rbac.createClusterRole({
        body: {
          metadata: { name: "offload-runs-creator", labels: { [`${RBAC}/aggregate-to-edit`]: "true" } },
          rules: [{ apiGroups: ["offload.dev"], resources: ["runs"], verbs: ["create", "get", "list"] }],
        },
      });
      await rbac.createClusterRole({
        body: {
          metadata: { name: "runs-reader" },
          rules: [
            { apiGroups: ["offload.dev"], resources: ["runs"], verbs: ["get"], resourceNames: ["run-1"] },
            { apiGroups: [""], resources: ["pods/log"], verbs: ["get"] },
          ],
        },
      });
      await rbac.createNamespacedRoleBinding({
        namespace: "a",
        body: { metadata: { name: "app-reader" }, roleRef: { apiGroup: RBAC, kind: "ClusterRole", name: "runs-reader" }, subjects: [{ kind: "ServiceAccount", name: "app", namespace: "a" }] },
      });
      await rbac.createNamespacedRoleBinding({
        namespace: "a",
        body: { metadata: { name: "editors" }, roleRef: { apiGroup: RBAC, kind: "ClusterRole", name: "edit" }, subjects: [{ apiGroup: RBAC, kind: "Group", name: "team-a" }] },
      });
    });

    it("allowed through a RoleBinding to a ClusterRole, with the RBAC authorizer's reason; the same request in another namespace is denied with no reason", async () => {
      const { user, groups } = saUser("a", "app");
      expect(await sar(user, groups, { namespace: "a", verb: "get", group: "offload.dev", resource: "runs", name: "run-1" })).toEqual({
        allowed: true,
        reason: 'RBAC: allowed by RoleBinding "app-reader/a" of ClusterRole "runs-reader" to ServiceAccount "app/a"',
      });
      expect(await sar(user, groups, { namespace: "b", verb: "get", group: "offload.dev", resource: "runs", name: "run-1" })).toEqual({ allowed: false });
    });

    it("resourceNames limit a rule to those names; subresources are matched as resource/subresource", async () => {
      const { user, groups } = saUser("a", "app");
      expect((await sar(user, groups, { namespace: "a", verb: "get", group: "offload.dev", resource: "runs", name: "run-2" })).allowed).toBe(false);
      expect((await sar(user, groups, { namespace: "a", verb: "get", group: "offload.dev", resource: "runs" })).allowed).toBe(false);
      expect((await sar(user, groups, { namespace: "a", verb: "get", resource: "pods", subresource: "log", name: "p" })).allowed).toBe(true);
      expect((await sar(user, groups, { namespace: "a", verb: "get", resource: "pods", name: "p" })).allowed).toBe(false);
    });

    it("a ClusterRole labelled aggregate-to-edit grants its rules to a group bound to edit (and edit shows them), and to admin through edit", async () => {
      const d = await sar("someone", ["team-a"], { namespace: "a", verb: "create", group: "offload.dev", resource: "runs" });
      expect(d).toEqual({ allowed: true, reason: 'RBAC: allowed by RoleBinding "editors/a" of ClusterRole "edit" to Group "team-a"' });
      expect((await sar("someone", ["team-a"], { namespace: "b", verb: "create", group: "offload.dev", resource: "runs" })).allowed).toBe(false);
      expect((await sar("someone", ["team-a"], { namespace: "a", verb: "delete", group: "offload.dev", resource: "runs" })).allowed).toBe(false);
      const edit = await rbac.readClusterRole({ name: "edit" });
      expect(edit.rules).toContainEqual({ apiGroups: ["offload.dev"], resources: ["runs"], verbs: ["create", "get", "list"] });
      const admin = await rbac.readClusterRole({ name: "admin" });
      expect(admin.rules).toContainEqual({ apiGroups: ["offload.dev"], resources: ["runs"], verbs: ["create", "get", "list"] });
      // Taking the label off takes the rules out again.
      await rbac.patchClusterRole({ name: "offload-runs-creator", body: { metadata: { labels: { [`${RBAC}/aggregate-to-edit`]: null } } } }, setHeaderOptions("Content-Type", PatchStrategy.MergePatch));
      expect((await sar("someone", ["team-a"], { namespace: "a", verb: "create", group: "offload.dev", resource: "runs" })).allowed).toBe(false);
      await rbac.patchClusterRole({ name: "offload-runs-creator", body: { metadata: { labels: { [`${RBAC}/aggregate-to-edit`]: "true" } } } }, setHeaderOptions("Content-Type", PatchStrategy.MergePatch));
      expect((await sar("someone", ["team-a"], { namespace: "a", verb: "create", group: "offload.dev", resource: "runs" })).allowed).toBe(true);
    });

    it("wildcards: * verbs, groups and resources; a ClusterRoleBinding applies in every namespace; system:masters may do anything", async () => {
      await rbac.createClusterRole({ body: { metadata: { name: "offload-all" }, rules: [{ apiGroups: ["*"], resources: ["*"], verbs: ["*"] }] } });
      await rbac.createClusterRoleBinding({ body: { metadata: { name: "ops-all" }, roleRef: { apiGroup: RBAC, kind: "ClusterRole", name: "offload-all" }, subjects: [{ apiGroup: RBAC, kind: "User", name: "ops" }] } });
      expect(await sar("ops", [], { namespace: "b", verb: "delete", group: "offload.dev", resource: "runs", name: "x" })).toEqual({
        allowed: true,
        reason: 'RBAC: allowed by ClusterRoleBinding "ops-all" of ClusterRole "offload-all" to User "ops"',
      });
      expect((await sar("ops", [], { verb: "list", group: "apps", resource: "deployments" })).allowed).toBe(true);
      expect(await sar("root", ["system:masters"], { namespace: "b", verb: "delete", resource: "secrets" })).toEqual({ allowed: true });
    });

    it("the built-in system:auth-delegator lets a service create TokenReviews and SubjectAccessReviews", async () => {
      await rbac.createClusterRoleBinding({
        body: { metadata: { name: "api-delegator" }, roleRef: { apiGroup: RBAC, kind: "ClusterRole", name: "system:auth-delegator" }, subjects: [{ kind: "ServiceAccount", name: "offload-api", namespace: "offload" }] },
      });
      const api = saUser("offload", "offload-api");
      expect((await sar(api.user, api.groups, { verb: "create", group: "authentication.k8s.io", resource: "tokenreviews" })).allowed).toBe(true);
      expect((await sar(api.user, api.groups, { verb: "create", group: "authorization.k8s.io", resource: "subjectaccessreviews" })).allowed).toBe(true);
      expect((await sar(api.user, api.groups, { verb: "create", group: "authorization.k8s.io", resource: "selfsubjectaccessreviews" })).reason).toBe(
        'RBAC: allowed by ClusterRoleBinding "system:basic-user" of ClusterRole "system:basic-user" to Group "system:authenticated"',
      );
    });

    it("a binding to a missing role says so in the reason; a review without user or groups, or without attributes, is 422", async () => {
      await rbac.createNamespacedRoleBinding({ namespace: "b", body: { metadata: { name: "dangling" }, roleRef: { apiGroup: RBAC, kind: "Role", name: "nope" }, subjects: [{ apiGroup: RBAC, kind: "User", name: "carol" }] } });
      expect(await sar("carol", [], { namespace: "b", verb: "get", resource: "pods" })).toEqual({ allowed: false, reason: 'RBAC: role.rbac.authorization.k8s.io "nope" not found' });
      const bad = authz.createSubjectAccessReview({ body: { spec: { resourceAttributes: { verb: "get", resource: "pods" } } } });
      await expect(bad.catch((e: { body: string }) => JSON.parse(e.body) as { message: string })).resolves.toMatchObject({
        code: 422,
        message: 'SubjectAccessReview.authorization.k8s.io "" is invalid: spec.user: Invalid value: "": at least one of user or group must be specified',
      });
      await expect(authz.createSubjectAccessReview({ body: { spec: { user: "x" } } })).rejects.toMatchObject({ code: 422 });
    });

    it("RBAC objects are defaulted and checked as on the real server: apiGroups filled in, a binding's roleRef cannot change, a rule needs verbs", async () => {
      const b = await rbac.createNamespacedRoleBinding({
        namespace: "b",
        body: { metadata: { name: "defaults" }, roleRef: { kind: "ClusterRole", name: "view" } as never, subjects: [{ kind: "User", name: "dave" }, { kind: "ServiceAccount", name: "app", namespace: "a" }] },
      });
      expect(b.roleRef.apiGroup).toBe(RBAC);
      expect(b.subjects).toEqual([{ apiGroup: RBAC, kind: "User", name: "dave" }, { kind: "ServiceAccount", name: "app", namespace: "a" }]);
      const change = rbac.replaceNamespacedRoleBinding({ namespace: "b", name: "defaults", body: { ...b, roleRef: { apiGroup: RBAC, kind: "ClusterRole", name: "edit" } } });
      await expect(change.catch((e: { body: string }) => JSON.parse(e.body) as { message: string })).resolves.toMatchObject({
        code: 422,
        message: 'RoleBinding.rbac.authorization.k8s.io "defaults" is invalid: roleRef: Invalid value: rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", Kind:"ClusterRole", Name:"edit"}: cannot change roleRef',
      });
      const noVerbs = rbac.createClusterRole({ body: { metadata: { name: "no-verbs" }, rules: [{ apiGroups: [""], resources: ["pods"], verbs: [] }] } });
      await expect(noVerbs.catch((e: { body: string }) => JSON.parse(e.body) as { message: string })).resolves.toMatchObject({
        code: 422,
        message: 'ClusterRole.rbac.authorization.k8s.io "no-verbs" is invalid: rules[0].verbs: Required value: verbs must contain at least one value',
      });
      const wrongKind = rbac.createClusterRoleBinding({ body: { metadata: { name: "to-role" }, roleRef: { apiGroup: RBAC, kind: "Role", name: "x" }, subjects: [] } });
      await expect(wrongKind).rejects.toMatchObject({ code: 422 });
    });

    it("a LocalSubjectAccessReview is confined to its namespace; a SelfSubjectAccessReview answers for the caller (the admin, or the ServiceAccount of a token)", async () => {
      const { user, groups } = saUser("a", "app");
      const local = await authz.createNamespacedLocalSubjectAccessReview({
        namespace: "a",
        body: { metadata: { namespace: "a" }, spec: { user, groups, resourceAttributes: { verb: "get", group: "offload.dev", resource: "runs", name: "run-1" } } },
      });
      expect(local.status?.allowed).toBe(true);
      await expect(
        authz.createNamespacedLocalSubjectAccessReview({ namespace: "a", body: { spec: { user, resourceAttributes: { namespace: "b", verb: "get", resource: "pods" } } } }),
      ).rejects.toMatchObject({ code: 400 });

      const self = await authz.createSelfSubjectAccessReview({ body: { spec: { resourceAttributes: { namespace: "b", verb: "delete", resource: "secrets" } } } });
      expect(self.status?.allowed).toBe(true);
      const kc = fake.kubeConfig();
      kc.loadFromOptions({
        clusters: kc.clusters,
        users: [{ name: "app", token: fake.issueToken("a", "app") }],
        contexts: [{ name: "app", cluster: kc.clusters[0]!.name, user: "app" }],
        currentContext: "app",
      });
      const asApp = kc.makeApiClient(AuthorizationV1Api);
      const mine = await asApp.createSelfSubjectAccessReview({ body: { spec: { resourceAttributes: { namespace: "a", verb: "get", group: "offload.dev", resource: "runs", name: "run-1" } } } });
      expect(mine.status).toEqual({ allowed: true, reason: 'RBAC: allowed by RoleBinding "app-reader/a" of ClusterRole "runs-reader" to ServiceAccount "app/a"' });
    });

    it("kubectl auth can-i --as a ServiceAccount --list, kubectl auth whoami and kubectl create token (protobuf bodies: a SelfSubjectAccessReview with impersonation headers, a SelfSubjectRulesReview, a SelfSubjectReview, a TokenRequest)", async () => {
      const dir = await mkdtemp(join(tmpdir(), "offload-auth-kubectl-"));
      try {
        const kubeconfig = await fake.writeKubeconfig(dir);
        // stdout is the answer; stderr has kubectl's warnings (runs.offload.dev is served by no API here, nor on a real cluster).
        const kubectl = async (...args: string[]): Promise<{ code: number; out: string; err: string }> => {
          try {
            const { stdout, stderr } = await promisify(execFile)(KUBECTL, ["--kubeconfig", kubeconfig, "--cache-dir", join(dir, "cache"), ...args]);
            return { code: 0, out: stdout.trim(), err: stderr };
          } catch (err) {
            const e = err as { code?: number | string; stdout?: string; stderr?: string };
            if (e.code === "ENOENT") throw new Error(`${KUBECTL} is missing: run npm run setup, which unpacks kubectl`);
            return { code: typeof e.code === "number" ? e.code : -1, out: (e.stdout ?? "").trim(), err: e.stderr ?? "" };
          }
        };
        const can = (ns: string, ...what: string[]) => kubectl("auth", "can-i", ...what, "-n", ns, "--as=system:serviceaccount:a:app");
        expect(await can("a", "create", "deployments.apps")).toMatchObject({ code: 1, out: "no" });
        await rbac.createNamespacedRoleBinding({
          namespace: "a",
          body: { metadata: { name: "app-editor" }, roleRef: { apiGroup: RBAC, kind: "ClusterRole", name: "edit" }, subjects: [{ kind: "ServiceAccount", name: "app" }] },
        });
        expect(await can("a", "create", "deployments.apps")).toMatchObject({ code: 0, out: "yes" });
        expect(await can("b", "create", "deployments.apps")).toMatchObject({ code: 1, out: "no" });
        // As with the real kubectl and API server: a resource no API serves (runs.offload.dev is only an RBAC name) is
        // asked for by its full name in the core group, which no rule names, so the answer is no even though edit
        // (through offload-runs-creator) allows it; a program asks with a SubjectAccessReview instead.
        const runs = await can("a", "create", "runs.offload.dev");
        expect(runs).toMatchObject({ code: 1, out: "no", err: expect.stringContaining("the server doesn't have a resource type 'runs' in group 'offload.dev'") });
        // What a ServiceAccount may do with runs is seen in the list of its rules (edit carries offload-runs-creator's).
        const list = await kubectl("auth", "can-i", "--list", "-n", "a", "--as=system:serviceaccount:a:app");
        expect(list.code).toBe(0);
        expect(list.out).toMatch(/^runs\.offload\.dev\s+\[\]\s+\[\]\s+\[create get list\]$/m);
        expect(list.out).toMatch(/^selfsubjectaccessreviews\.authorization\.k8s\.io\s+\[\]\s+\[\]\s+\[create\]$/m);
        const whoami = await kubectl("auth", "whoami", "-o", "json", "--as=system:serviceaccount:a:app");
        expect(JSON.parse(whoami.out)).toMatchObject({ kind: "SelfSubjectReview", status: { userInfo: { username: "system:serviceaccount:a:app", groups: ["system:serviceaccounts", "system:serviceaccounts:a", "system:authenticated"] } } });
        const created = await kubectl("create", "token", "app", "-n", "a", "--audience", "offload", "--duration", "15m");
        expect(created.code).toBe(0);
        expect(await review(created.out, ["offload"])).toMatchObject({ authenticated: true, user: { username: "system:serviceaccount:a:app" } });
        expect(await kubectl("create", "token", "app", "-n", "a", "--duration", "5m")).toMatchObject({ code: 1, err: expect.stringContaining("may not specify a duration less than 10 minutes") });
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  });
});
