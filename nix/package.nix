# SPDX-FileCopyrightText: ghafgen contributors
# SPDX-License-Identifier: Apache-2.0
#
# The ghafgen command, callPackage-style (flake.nix: packages, overlays.default).
# The tools ghafgen runs are on its PATH, so `nix run` works on a bare machine.
{
  lib,
  stdenv,
  python3Packages,
  installShellFiles,
  dtc,
  graphviz,
  git,
  nix,
}:
let
  root = ../.;
  deps = import ./python-deps.nix;
  version = builtins.head (
    builtins.match ''.*__version__ = "([^"]+)".*'' (builtins.readFile (root + "/ghafgen/__init__.py"))
  );
in
python3Packages.buildPythonApplication {
  pname = "ghafgen";
  inherit version;
  pyproject = true;
  # Only what the wheel is built from; editing tests or notes rebuilds nothing.
  src = lib.fileset.toSource {
    inherit root;
    fileset = lib.fileset.unions [
      (root + "/ghafgen")
      (root + "/pyproject.toml")
      (root + "/README.md")
    ];
  };
  build-system = [ python3Packages.setuptools ];
  dependencies = map (name: python3Packages.${name}) deps.runtime;
  # pyproject caps typer below 0.28 for start-up time only; nixpkgs' typer is
  # whatever its release carries, and every 0.2x keeps the API ghafgen uses.
  pythonRelaxDeps = [ "typer" ];
  nativeBuildInputs = [ installShellFiles ];
  # dtc and fdtoverlay (dtc), dot (graphviz), git apply, nix-instantiate and nix build.
  makeWrapperArgs = [
    "--prefix"
    "PATH"
    ":"
    (lib.makeBinPath [
      dtc
      graphviz
      git
      nix
    ])
  ];
  # After wrapPythonPrograms, so the command runs with its dependencies; the
  # scripts come from the command itself (Typer), so they match its options.
  postFixup = lib.optionalString (stdenv.buildPlatform.canExecute stdenv.hostPlatform) ''
    installShellCompletion --cmd ghafgen \
      --bash <(_GHAFGEN_COMPLETE=source_bash $out/bin/ghafgen) \
      --zsh <(_GHAFGEN_COMPLETE=source_zsh $out/bin/ghafgen) \
      --fish <(_GHAFGEN_COMPLETE=source_fish $out/bin/ghafgen)
  '';
  # The suite runs as the flake's checks.<system>.tests, with the real tools.
  doCheck = false;
  meta = {
    description = "Checked Jetson Orin passthrough configuration for Ghaf and microvm.nix";
    license = lib.licenses.asl20;
    mainProgram = "ghafgen";
  };
}
