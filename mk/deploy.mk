# Deployment targets (deploy/README.md): make image, make push REGISTRY=..., make deb, make dist.
# Each installs the Debian packages it needs first (scripts/deps.sh deb|image|deploy) and works
# from a clone or from a tarball without .git (the commit then comes from the file COMMIT).
DOCKER             ?= docker
IMAGE              ?= rates
REGISTRY           ?=
DOCKER_BUILD_FLAGS ?=
DEB_OUT            ?= $(BUILD)/deb
DIST_OUT           ?= $(BUILD)/dist
DIST_NAME          ?= rates-$(VERSION)-$(COMMIT)
IMAGE_CREATED      := $(shell date -u +%Y-%m-%dT%H:%M:%SZ)

.PHONY: image push deb dist print-commit deploy-deps deploy-check ha-deploy-check ha-deploy-check-pg13 compose-secrets
# The runtime image, tagged with the version and the commit. Installs docker.io when there is no
# docker. The engine: DOCKER_HOST or the default socket, else the private one of make compose-up
# when it runs ($(RATES_DOCKER_DIR)), else docker.service when systemd runs; else it says how.
RATES_DOCKER_DIR ?= /var/lib/rates-docker
image:
	@command -v $(DOCKER) >/dev/null 2>&1 || sh scripts/deps.sh image
	@if ! $(DOCKER) info >/dev/null 2>&1 && [ -z "$${DOCKER_HOST:-}" ]; then \
	   if DOCKER_HOST=unix://$(RATES_DOCKER_DIR)/docker.sock $(DOCKER) info >/dev/null 2>&1; then \
	     export DOCKER_HOST=unix://$(RATES_DOCKER_DIR)/docker.sock; \
	     echo "make image: on the private engine of make compose-up ($$DOCKER_HOST)"; \
	   elif [ -d /run/systemd/system ]; then \
	     systemctl start docker 2>/dev/null || sudo -n systemctl start docker 2>/dev/null || true; \
	   fi; \
	 fi; \
	 $(DOCKER) info >/dev/null 2>&1 || \
	   { echo "make image: no Docker engine answers$${DOCKER_HOST:+ at $$DOCKER_HOST}: start one" \
	     "(systemctl start docker; or make compose-up, which starts a private one)," \
	     "or set DOCKER_HOST" >&2; exit 1; }; \
	 set -x; $(DOCKER) build $(DOCKER_BUILD_FLAGS) --build-arg VERSION=$(VERSION) \
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
# From a tarball without .git the copy is the tree minus build outputs; the commit is passed on.
deb:
	@sh scripts/deps.sh deb
	@COMMIT=$(COMMIT) sh tools/build-deb.sh $(DEB_OUT)

# The release tarball: `git archive` of HEAD (committed files only), with COMMIT filled in by
# export-subst (.gitattributes), so `make`, `make deb` and `make image` from the unpacked tree
# still name the commit. Needs a clone.
dist:
	@git rev-parse --verify -q HEAD >/dev/null 2>&1 || \
	  { echo "make dist: needs a git clone (it archives HEAD); this tree is $(COMMIT)" >&2; exit 2; }
	@git diff --quiet HEAD -- 2>/dev/null || \
	  echo "make dist: uncommitted changes are left out: the tarball is HEAD ($(COMMIT))" >&2
	@mkdir -p $(DIST_OUT)
	@git archive --format=tar.gz --prefix=$(DIST_NAME)/ -o $(DIST_OUT)/$(DIST_NAME).tar.gz HEAD
	@tar -xzOf $(DIST_OUT)/$(DIST_NAME).tar.gz $(DIST_NAME)/COMMIT | grep -q '^[0-9a-f]\{12,\}$$' || \
	  { echo "make dist: COMMIT was not filled in (is /COMMIT export-subst in .gitattributes?)" >&2; exit 1; }
	@echo $(DIST_OUT)/$(DIST_NAME).tar.gz

print-commit:
	@echo $(COMMIT)

# What the deployment checks use (deploy/ci/packages.txt: docker, podman, iptables, ansible...).
deploy-deps:
	@sh scripts/deps.sh deploy

# Every deployment check that this machine can run (tests/stages/deploy.sh).
deploy-check: deploy-deps
	@RATES_TEST_RESULTS=$(BUILD)/test-results sh tests/stages/deploy.sh

# The Ansible HA roles on three database hosts and one app host (systemd containers under
# podman): the playbook twice (changed=0), then switchover and a killed leader under a retrying
# writer, gaps printed (deploy/ci/ha_deploy_check.sh). make test runs it in the deploy stage,
# the second playbook run only when its inputs changed since one last reported changed=0
# (RATES_HA_IDEMPOTENCE=auto); this target always runs it, and records a pass
# (deploy/ci/ha-idempotence.passed: commit it with the change that needed the run).
ha-deploy-check: deploy-deps
	@$(MAKE) -s deb DEB_OUT=$(CURDIR)/var/ha-deploy-check-deb
	@d=$$(mktemp -d /tmp/rates-ha-deploy.XXXXXX); \
	 RATES_HA_IDEMPOTENCE=$${RATES_HA_IDEMPOTENCE:-1} sh deploy/ci/ha_deploy_check.sh $$d $$(ls $(CURDIR)/var/ha-deploy-check-deb/rates_*.deb | tail -1); rc=$$?; \
	 sh deploy/ci/ha_deploy_check.sh --cleanup $$d; exit $$rc

# The same on Debian 11 database hosts (PostgreSQL 13, production's version). make test runs it
# only when its inputs changed since it last passed (tests/stages/deploy.sh, RATES_HA_PG13);
# this target always runs it, and when it passes records it (deploy/ci/ha_record.sh pg13: the
# hash taken before the run, in this machine's stamp and in deploy/ci/ha-pg13.passed): commit
# that file with the change that needed the run.
# Three lines, so that make -n runs neither the hash nor the record (a line naming $(MAKE) runs
# even under -n).
ha-deploy-check-pg13:
	@mkdir -p var && sh deploy/ci/ha_record.sh >var/ha-pg13.inputs
	@RATES_HA_DB_SUITE=bullseye $(MAKE) -s ha-deploy-check
	@sh deploy/ci/ha_record.sh pg13 record "$$(cat var/ha-pg13.inputs)"

# The compose stack's secret files (0700 dir, 0600 files, git-ignored; deploy/compose/secrets.sh).
compose-secrets:
	@sh deploy/compose/secrets.sh $(RATES_SECRETS_DIR)
