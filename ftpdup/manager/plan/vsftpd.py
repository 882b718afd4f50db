"""vsftpd: its configuration, PAM service and user list, and whether to restart or reload."""

from __future__ import annotations

import os

from ftpdup.desired import Desired
from ftpdup.host import vsftpd
from ftpdup.host.units import DEFAULT_ETC_DIR, vsftpd_drop_in
from ftpdup.manager.plan.model import Plan, write_if_changed
from ftpdup.settings import Settings


def plan_vsftpd(plan: Plan, desired: Desired, records, kept, host: Settings, actual,
                refusing: set[str] | None = None) -> None:  # fmt: skip
    """Plan vsftpd's files for the applied and kept lanes' users (but those of the lanes
    refusing new logins); restart on a new configuration, reload on a new user list."""
    users = [lane.user for lane in desired.lanes.values() if lane.name not in (refusing or ())]
    users += [records[lane].user for lane in kept if records.get(lane)]
    options = vsftpd.VsftpdOptions(
        listen_port=host.vsftpd_listen_port,
        listen_address=host.vsftpd_listen_address,
        pasv_address=host.vsftpd_pasv_address,
        pasv_min_port=host.vsftpd_pasv_min_port,
        pasv_max_port=host.vsftpd_pasv_max_port,
        userlist_file=os.path.join(host.etc_dir, "vsftpd.users"),
        ssl_cert_file=host.vsftpd_ssl_cert_file,
        ssl_key_file=host.vsftpd_ssl_key_file,
        ssl_required=host.vsftpd_ssl_required,
    )
    debian = actual.files.get("/etc/pam.d/common-auth") is not None
    config_changed = write_if_changed(
        plan,
        actual,
        os.path.join(host.etc_dir, "vsftpd.conf"),
        vsftpd.render_config(options),
        0o644,
    )
    config_changed |= write_if_changed(
        plan, actual, f"/etc/pam.d/{vsftpd.PAM_SERVICE}", vsftpd.render_pam(debian), 0o644
    )
    users_changed = write_if_changed(
        plan, actual, options.userlist_file, vsftpd.render_userlist(users), 0o644
    )
    if host.etc_dir != DEFAULT_ETC_DIR:  # its unit names the default configuration
        drop_in = vsftpd_drop_in_path(host)
        config_changed |= write_if_changed(plan, actual, drop_in, vsftpd_drop_in(host.etc_dir),
                                           0o644)  # fmt: skip
    plan.vsftpd = "restart" if config_changed else "reload" if users_changed else ""


def vsftpd_drop_in_path(host: Settings) -> str:
    """Return where the manager points the vsftpd unit at a configuration elsewhere."""
    return os.path.join(host.unit_dir, f"{host.vsftpd_unit}.d", "40-ftpdup-settings.conf")
