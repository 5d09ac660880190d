# Installation in Debian's places and the .deb packages (CPack), issue 14.
#
#   cmake --install build [--prefix /usr] (or DESTDIR=/some/root cmake --install build) puts:
#     <libdir>/kedge/kedge_plugin.so           libdir = lib/<multiarch> under /usr (GNUInstallDirs)
#     /etc/kedge/mosquitto-kedge.conf          loads the plugin into Debian's mosquitto, through
#     /etc/mosquitto/conf.d/kedge.conf         a link to it (removed with the package)
#     bin/kedge-bridge, bin/kedge-ctl, their man pages (help2man, from --help)
#     /etc/kedge/kedge-bridge.conf, /lib/systemd/system/kedge-bridge.service
#     share/doc/kedge-{plugin,bridge}/: README (bridge), copyright, changelog.gz
#   cpack -G DEB (in the build tree; `make package` does the same) builds two packages:
#     kedge-plugin  the plugin and the conf.d file; Depends mosquitto and what dpkg-shlibdeps finds
#     kedge-bridge  kedge-bridge, kedge-ctl, their config and unit
# The component of each file is its package. packaging/deb/<package>/ holds the maintainer
# scripts; the conffiles lists are generated from the install paths.

# An administrator's CMAKE_INSTALL_PREFIX wins; the default is Debian's /usr, not /usr/local, so
# that GNUInstallDirs picks the multiarch libdir and /etc (it does so only for /usr).
# A tree configured before this file existed has CMake's /usr/local cached: moved once (the
# KEDGE_PREFIX_CHOSEN mark); an explicit -DCMAKE_INSTALL_PREFIX given after that stays.
if(CMAKE_INSTALL_PREFIX_INITIALIZED_TO_DEFAULT
   OR (NOT DEFINED CACHE{KEDGE_PREFIX_CHOSEN} AND CMAKE_INSTALL_PREFIX STREQUAL "/usr/local"))
  set(CMAKE_INSTALL_PREFIX /usr CACHE PATH "Install prefix (Debian: /usr)" FORCE)
endif()
set(KEDGE_PREFIX_CHOSEN ON CACHE INTERNAL "CMAKE_INSTALL_PREFIX defaulted to /usr once")
include(GNUInstallDirs)
set(KEDGE_SYSTEMD_UNITDIR /lib/systemd/system CACHE PATH
    "systemd system units (Debian 12: /lib/systemd/system)")

set(KEDGE_PLUGIN_DIR ${CMAKE_INSTALL_LIBDIR}/kedge)
set(KEDGE_PLUGIN_INSTALL_PATH ${CMAKE_INSTALL_FULL_LIBDIR}/kedge/kedge_plugin.so)
set(KEDGE_ETC ${CMAKE_INSTALL_FULL_SYSCONFDIR})
set(KEDGE_PKG_BUILD ${CMAKE_BINARY_DIR}/packaging)

# --- the plugin package ---------------------------------------------------------------------------
configure_file(${CMAKE_SOURCE_DIR}/conf/mosquitto-kedge.conf.in ${KEDGE_PKG_BUILD}/kedge.conf @ONLY)
install(TARGETS kedge_plugin LIBRARY DESTINATION ${KEDGE_PLUGIN_DIR} COMPONENT plugin)
# The configuration is a conffile in /etc/kedge; conf.d holds only a link to it, a plain package
# file. `apt-get remove` keeps conffiles but deletes plain files: the link goes with the plugin,
# so Debian's mosquitto never meets a plugin line whose library is gone.
install(FILES ${KEDGE_PKG_BUILD}/kedge.conf DESTINATION ${KEDGE_ETC}/kedge
        RENAME mosquitto-kedge.conf COMPONENT plugin)
file(MAKE_DIRECTORY ${KEDGE_PKG_BUILD}/confd)
file(CREATE_LINK ../../kedge/mosquitto-kedge.conf ${KEDGE_PKG_BUILD}/confd/kedge.conf SYMBOLIC)
install(FILES ${KEDGE_PKG_BUILD}/confd/kedge.conf DESTINATION ${KEDGE_ETC}/mosquitto/conf.d
        COMPONENT plugin)

# --- the bridge package ---------------------------------------------------------------------------
install(TARGETS kedge-bridge kedge-ctl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT bridge)
install(FILES ${CMAKE_SOURCE_DIR}/conf/kedge-bridge.conf DESTINATION ${KEDGE_ETC}/kedge
        COMPONENT bridge)
install(FILES ${CMAKE_SOURCE_DIR}/conf/kedge-bridge.service DESTINATION ${KEDGE_SYSTEMD_UNITDIR}
        COMPONENT bridge)
install(FILES ${CMAKE_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/kedge-bridge
        COMPONENT bridge)

# Man pages: help2man (Debian's) makes them from each binary's --help; gzip -n keeps them
# reproducible. Without help2man there are none (lintian then warns binary-without-manpage).
find_program(HELP2MAN help2man)
find_program(GZIP gzip REQUIRED)
if(HELP2MAN)
  set(KEDGE_MANPAGES)
  foreach(prog kedge-bridge kedge-ctl)
    if(prog STREQUAL "kedge-bridge")
      set(what "KubeEdge EdgeHub, MetaManager and Edged for the kedge mosquitto plugin")
    else()
      set(what "operator CLI for kedge's plugin and bridge")
    endif()
    set(page ${KEDGE_PKG_BUILD}/man/${prog}.1)
    add_custom_command(
      OUTPUT ${page}.gz
      COMMAND ${CMAKE_COMMAND} -E make_directory ${KEDGE_PKG_BUILD}/man
      COMMAND ${HELP2MAN} --no-info --no-discard-stderr --section=1
              --version-string=${PROJECT_VERSION} --name=${what} --output=${page}
              $<TARGET_FILE:${prog}>
      COMMAND ${GZIP} -9nf ${page}
      DEPENDS ${prog}
      COMMENT "help2man: ${prog}.1"
      VERBATIM)
    list(APPEND KEDGE_MANPAGES ${page}.gz)
  endforeach()
  add_custom_target(kedge_manpages ALL DEPENDS ${KEDGE_MANPAGES})
  install(FILES ${KEDGE_MANPAGES} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT bridge)
else()
  message(STATUS "help2man not found: no man pages")
endif()

# copyright and changelog in each package's doc directory, as Debian requires. The packages are
# native (no upstream tarball, no Debian revision), so the changelog is changelog.gz.
string(TIMESTAMP KEDGE_PKG_DATE "%a, %d %b %Y %H:%M:%S +0000" UTC)
set(KEDGE_MAINTAINER "kedge maintainers <maintainers@users.noreply.r-seed-a2fa3a96.example>")
configure_file(${CMAKE_SOURCE_DIR}/packaging/deb/changelog.in ${KEDGE_PKG_BUILD}/changelog
               @ONLY)
add_custom_command(
  OUTPUT ${KEDGE_PKG_BUILD}/changelog.gz
  COMMAND ${GZIP} -9nkf ${KEDGE_PKG_BUILD}/changelog
  DEPENDS ${KEDGE_PKG_BUILD}/changelog
  COMMENT "changelog.gz"
  VERBATIM)
add_custom_target(kedge_changelog ALL DEPENDS ${KEDGE_PKG_BUILD}/changelog.gz)
foreach(comp plugin bridge)
  install(FILES ${CMAKE_SOURCE_DIR}/packaging/deb/copyright ${KEDGE_PKG_BUILD}/changelog.gz
          DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/kedge-${comp} COMPONENT ${comp})
endforeach()

# --- CPack: one .deb per component ----------------------------------------------------------------
file(WRITE ${KEDGE_PKG_BUILD}/kedge-plugin/conffiles "${KEDGE_ETC}/kedge/mosquitto-kedge.conf\n")
file(WRITE ${KEDGE_PKG_BUILD}/kedge-bridge/conffiles "${KEDGE_ETC}/kedge/kedge-bridge.conf\n")

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME kedge)
set(CPACK_PACKAGE_VENDOR "kedge")
set(CPACK_PACKAGE_CONTACT "${KEDGE_MAINTAINER}")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_PACKAGE_DIRECTORY ${CMAKE_BINARY_DIR}/debs)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL plugin bridge)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SOURCE kedge)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://kubeedge.io/")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS OFF)
set(CPACK_DEBIAN_COMPRESSION_TYPE xz)

set(CPACK_DEBIAN_PLUGIN_PACKAGE_NAME kedge-plugin)
set(CPACK_DEBIAN_PLUGIN_PACKAGE_SECTION net)
# mosquitto: the plugin is loaded into it and resolves the broker's symbols from it (it links
# no libmosquitto, so dpkg-shlibdeps cannot know); 2.0 for the v5 plugin API.
set(CPACK_DEBIAN_PLUGIN_PACKAGE_DEPENDS "mosquitto (>= 2.0)")
set(CPACK_COMPONENT_PLUGIN_DESCRIPTION
    "KubeEdge EventBus and DeviceTwin inside mosquitto\nkedge_plugin.so runs KubeEdge's EventBus and DeviceTwin inside Debian's\nmosquitto broker: devices and mappers use edgecore's $hw/events MQTT topics,\nand twins are kept in edgecore's SQLite schema. The package loads the plugin\nthrough /etc/mosquitto/conf.d/kedge.conf.")
set(CPACK_DEBIAN_PLUGIN_PACKAGE_CONTROL_EXTRA
    ${KEDGE_PKG_BUILD}/kedge-plugin/conffiles
    ${CMAKE_SOURCE_DIR}/packaging/deb/kedge-plugin/postinst
    ${CMAKE_SOURCE_DIR}/packaging/deb/kedge-plugin/postrm)
set(CPACK_DEBIAN_PLUGIN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(CPACK_DEBIAN_BRIDGE_PACKAGE_NAME kedge-bridge)
set(CPACK_DEBIAN_BRIDGE_PACKAGE_SECTION net)
# The bridge talks to the plugin through the local broker; it is useful without a local one
# only for `kedge-bridge join`, hence Recommends.
set(CPACK_DEBIAN_BRIDGE_PACKAGE_RECOMMENDS "kedge-plugin (= ${PROJECT_VERSION})")
set(CPACK_COMPONENT_BRIDGE_DESCRIPTION
    "KubeEdge edge node daemon for the kedge mosquitto plugin\nkedge-bridge connects the local mosquitto with kedge_plugin.so to a KubeEdge\ncloudcore (EdgeHub over wss with mutual TLS, MetaManager, node status and\nlease) and runs the node's pods through the Docker Engine API. kedge-ctl is\nthe operator's command-line tool. Includes a systemd unit.")
set(CPACK_DEBIAN_BRIDGE_PACKAGE_CONTROL_EXTRA
    ${KEDGE_PKG_BUILD}/kedge-bridge/conffiles
    ${CMAKE_SOURCE_DIR}/packaging/deb/kedge-bridge/postinst
    ${CMAKE_SOURCE_DIR}/packaging/deb/kedge-bridge/prerm
    ${CMAKE_SOURCE_DIR}/packaging/deb/kedge-bridge/postrm)
set(CPACK_DEBIAN_BRIDGE_PACKAGE_CONTROL_STRICT_PERMISSION ON)

include(CPack)
