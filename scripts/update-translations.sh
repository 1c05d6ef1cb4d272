#!/usr/bin/env bash
# Re-extract the texts to translate and refresh the English catalogue (zh-CN texts are the ids).
#
#   bash scripts/update-translations.sh      # extract, update gridmap/translations/en/…/messages.po, compile .mo
#
# Then translate every new or fuzzy entry of gridmap/translations/en/LC_MESSAGES/messages.po, run
# the script again (it compiles the .mo), and commit both files; tests/test_i18n.py checks that
# every text in the templates has an English translation.
set -euo pipefail
cd "$(dirname "$0")/.."
PYBABEL=${PYBABEL:-pybabel}
"$PYBABEL" extract -F babel.cfg -k N_ --no-location --sort-output --project gridmap -o gridmap/translations/messages.pot .
if [[ -f gridmap/translations/en/LC_MESSAGES/messages.po ]]; then
    "$PYBABEL" update -i gridmap/translations/messages.pot -d gridmap/translations -l en --no-fuzzy-matching
else
    "$PYBABEL" init -i gridmap/translations/messages.pot -d gridmap/translations -l en
fi
"$PYBABEL" compile -d gridmap/translations -l en --statistics
