-- An email's tracking token: its open-tracking image and its links'
-- redirects (`/t/{token}/...`) fire `email_opened` and `link_clicked` on
-- the entity it was about. NULL for other channels.
ALTER TABLE outbox ADD COLUMN token TEXT;
CREATE UNIQUE INDEX outbox_token ON outbox (token);
