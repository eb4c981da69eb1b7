#!/bin/sh
set -e
mkdir -p /opt/greeter
printf '#!/bin/sh\necho %s\n' "'$GREETING'" > /usr/local/bin/greet
chmod +x /usr/local/bin/greet
echo "installed greet for $_REMOTE_USER"
