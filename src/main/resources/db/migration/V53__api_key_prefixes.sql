-- Keys seeded from PREFLOOP_API_KEYS used to show their first 8 characters, the whole of a short
-- key. Their length is unknown here, so their shown prefix goes; new rows show at most a third.
update api_keys set prefix = '' where created_by = 'environment';
