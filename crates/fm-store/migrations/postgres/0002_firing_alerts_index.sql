-- fm-store schema, version 2: the flapping check counts a service's recent firing alerts on
-- every alert. The (service, received_at) index alone made each count read every matching row
-- to test its disposition (10,000 row reads per alert in a burst for one service); this partial
-- index answers the count from the index alone.
CREATE INDEX fm_alerts_firing ON fm_alerts (service, received_at)
    WHERE disposition <> 'resolved_recorded';
