-- Grants became permissions: a capability, or the entity kinds and fields
-- it reaches (`read:deal`, `field:UF_X`). Plugins installed before were
-- granted capabilities over every kind and field; say so explicitly.
UPDATE plugins SET grants = CASE
    WHEN grants = '[]' THEN '["read:*","write:*","field:*"]'
    ELSE substr(grants, 1, length(grants) - 1) || ',"read:*","write:*","field:*"]'
END;
