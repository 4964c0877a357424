# Deployment targets (deploy/README.md): make image, make push REGISTRY=..., make deb.
DOCKER             ?= docker
IMAGE              ?= rates
REGISTRY           ?=
DOCKER_BUILD_FLAGS ?=
DEB_OUT            ?= $(BUILD)/deb
IMAGE_CREATED      := $(shell date -u +%Y-%m-%dT%H:%M:%SZ)

.PHONY: image push deb deploy-check ha-deploy-check compose-secrets
# The runtime image, tagged with the version and the git commit.
image:
	$(DOCKER) build $(DOCKER_BUILD_FLAGS) --build-arg VERSION=$(VERSION) \
	  --build-arg COMMIT=$(COMMIT) --build-arg CREATED=$(IMAGE_CREATED) \
	  -t $(IMAGE):$(VERSION) -t $(IMAGE):$(COMMIT) .

# Tags the image for REGISTRY and pushes both tags (not exercised in CI: no registry here).
push: image
	@test -n "$(REGISTRY)" || { echo "usage: make push REGISTRY=registry.example.com/team" >&2; exit 2; }
	$(DOCKER) tag $(IMAGE):$(VERSION) $(REGISTRY)/$(IMAGE):$(VERSION)
	$(DOCKER) tag $(IMAGE):$(COMMIT) $(REGISTRY)/$(IMAGE):$(COMMIT)
	$(DOCKER) push $(REGISTRY)/$(IMAGE):$(VERSION)
	$(DOCKER) push $(REGISTRY)/$(IMAGE):$(COMMIT)

# The Debian package, built the Debian way from debian/ (debhelper, dh_installsystemd for the
# units of deploy/systemd/, the rates user, conffiles, man pages) by dpkg-buildpackage on a
# copy of the tree (tools/build-deb.sh); lintian and an install/purge run check it in CI.
deb:
	@sh tools/build-deb.sh $(DEB_OUT)

# Every deployment check that this machine can run (tests/stages/deploy.sh).
deploy-check:
	@RATES_TEST_RESULTS=$(BUILD)/test-results sh tests/stages/deploy.sh

# The Ansible HA roles on three database hosts and one app host (systemd containers under
# podman): the playbook twice (changed=0), then switchover and a killed leader under a retrying
# writer, gaps printed (deploy/ci/ha_deploy_check.sh). make test runs it in the deploy stage.
ha-deploy-check:
	@$(MAKE) -s deb DEB_OUT=$(CURDIR)/var/ha-deploy-check-deb
	@d=$$(mktemp -d /tmp/rates-ha-deploy.XXXXXX); \
	 sh deploy/ci/ha_deploy_check.sh $$d $$(ls $(CURDIR)/var/ha-deploy-check-deb/rates_*.deb | tail -1); rc=$$?; \
	 sh deploy/ci/ha_deploy_check.sh --cleanup $$d; exit $$rc

# The compose stack's secret files (0700 dir, 0600 files, git-ignored; deploy/compose/secrets.sh).
compose-secrets:
	@sh deploy/compose/secrets.sh $(RATES_SECRETS_DIR)
