-- The VICIdial tables that the balance FILL process and the OUTBALANCE call lifecycle touch.
--
-- Written from the facts of spec/VICIDIAL_FILL.md section 6 (VICIdial 2.14 column names, types,
-- defaults and keys); no VICIdial file was copied. The service never creates tables in production:
-- this file builds the test database and the demo cluster.
--
-- Rules this file keeps:
-- * Column names, types, defaults and keys are VICIdial's (2.14, "new"); where the spec lists only
--   the relevant columns of a wide table, the others FILL never touches are left out.
-- * VICIdial's CREATE file makes every table MyISAM and later converts vicidial_campaign_server_stats,
--   live_channels, live_sip_channels, parked_channels, vicidial_auto_calls and vicidial_hopper to
--   MEMORY; here they are created as MEMORY directly. vicidial_live_agents stays MyISAM: MEMORY
--   cannot hold its TEXT column closer_campaigns.
-- * It loads into MariaDB's strict default sql_mode (no zero dates, no invalid defaults).
-- * One statement per CREATE TABLE, each ended by ';' at the end of a line; no ';' inside strings
--   or comments, so fillreactor.schema.schema_statements() can split it.

-- 6.1 Asterisk servers of the cluster. No primary key: VICIdial has only a unique index on server_id.
CREATE TABLE servers (
  server_id VARCHAR(10) NOT NULL,
  server_description VARCHAR(255),
  server_ip VARCHAR(15) NOT NULL,
  active ENUM('Y','N'),
  asterisk_version VARCHAR(20) DEFAULT '1.4.21.2',
  max_vicidial_trunks SMALLINT(4) DEFAULT '23',
  telnet_host VARCHAR(20) NOT NULL DEFAULT 'localhost',
  telnet_port INT(5) NOT NULL DEFAULT '5038',
  ASTmgrUSERNAME VARCHAR(20) NOT NULL DEFAULT 'cron',
  ASTmgrSECRET VARCHAR(20) NOT NULL DEFAULT '1234',
  ASTmgrUSERNAMEupdate VARCHAR(20) NOT NULL DEFAULT 'updatecron',
  ASTmgrUSERNAMElisten VARCHAR(20) NOT NULL DEFAULT 'listencron',
  ASTmgrUSERNAMEsend VARCHAR(20) NOT NULL DEFAULT 'sendcron',
  local_gmt VARCHAR(6) DEFAULT '-5.00',
  answer_transfer_agent VARCHAR(20) NOT NULL DEFAULT '8365',
  ext_context VARCHAR(20) NOT NULL DEFAULT 'default',
  vd_server_logs ENUM('Y','N') DEFAULT 'Y',
  vicidial_balance_active ENUM('Y','N') DEFAULT 'N',
  balance_trunks_offlimits SMALLINT(5) UNSIGNED DEFAULT '0',
  outbound_calls_per_second SMALLINT(3) UNSIGNED DEFAULT '5',
  vicidial_balance_rank TINYINT(3) UNSIGNED DEFAULT '0',
  routing_prefix VARCHAR(10) DEFAULT '13',
  conf_engine ENUM('MEETME','CONFBRIDGE') DEFAULT 'MEETME',
  active_asterisk_server ENUM('Y','N') DEFAULT 'Y',
  vicidial_recording_limit MEDIUMINT(8) DEFAULT '60',
  UNIQUE INDEX server_id (server_id)
) ENGINE=MyISAM;

-- 6.2 One row of cluster-wide settings.
CREATE TABLE system_settings (
  version VARCHAR(50),
  install_date VARCHAR(50),
  db_schema_version INT(8) UNSIGNED DEFAULT '0',
  outbound_calls_per_second SMALLINT(3) UNSIGNED DEFAULT '10',
  outbound_autodial_active ENUM('1','0') DEFAULT '1',
  disable_auto_dial ENUM('0','1') DEFAULT '0',
  use_non_latin ENUM('0','1') DEFAULT '0',
  call_limit_24hour ENUM('0','1') DEFAULT '0',
  hopper_hold_inserts ENUM('0','1','2','3','4','5','6','7') DEFAULT '0',
  allow_shared_dial ENUM('0','1','2','3','4','5','6') DEFAULT '0',
  agent_search_method ENUM('0','1','2','3','4','5','6') DEFAULT '0',
  enhanced_disconnect_logging ENUM('0','1','2','3','4','5','6') DEFAULT '0',
  noanswer_log ENUM('Y','N') DEFAULT 'N',
  enable_drop_lists ENUM('0','1','2') DEFAULT '0'
) ENGINE=MyISAM;

-- 6.3 Campaigns: every column the spec lists as relevant, plus campaign_name.
CREATE TABLE vicidial_campaigns (
  campaign_id VARCHAR(8) PRIMARY KEY NOT NULL,
  campaign_name VARCHAR(40),
  active ENUM('Y','N'),
  dial_method ENUM('MANUAL','RATIO','ADAPT_HARD_LIMIT','ADAPT_TAPERED','ADAPT_AVERAGE','INBOUND_MAN','SHARED_RATIO',
    'SHARED_ADAPT_HARD_LIMIT','SHARED_ADAPT_TAPERED','SHARED_ADAPT_AVERAGE') DEFAULT 'MANUAL',
  auto_dial_level VARCHAR(6) DEFAULT '0',
  available_only_ratio_tally ENUM('Y','N') DEFAULT 'N',
  available_only_tally_threshold ENUM('DISABLED','LOGGED-IN_AGENTS','NON-PAUSED_AGENTS','WAITING_AGENTS')
    DEFAULT 'DISABLED',
  available_only_tally_threshold_agents SMALLINT(5) UNSIGNED DEFAULT '0',
  dial_level_threshold ENUM('DISABLED','LOGGED-IN_AGENTS','NON-PAUSED_AGENTS','WAITING_AGENTS') DEFAULT 'DISABLED',
  dial_level_threshold_agents SMALLINT(5) UNSIGNED DEFAULT '0',
  adaptive_dl_diff_target SMALLINT(3) DEFAULT '0',
  dl_diff_target_method ENUM('ADAPT_CALC_ONLY','CALLS_PLACED') DEFAULT 'ADAPT_CALC_ONLY',
  adaptive_dropped_percentage VARCHAR(4) DEFAULT '3',
  adaptive_maximum_level VARCHAR(6) DEFAULT '3.0',
  adaptive_latest_server_time VARCHAR(4) DEFAULT '2100',
  adaptive_intensity VARCHAR(6) DEFAULT '0',
  dial_timeout TINYINT UNSIGNED DEFAULT '60',
  dial_prefix VARCHAR(20) DEFAULT '9',
  omit_phone_code ENUM('Y','N') DEFAULT 'N',
  campaign_cid VARCHAR(20) DEFAULT '0000000000',
  use_custom_cid ENUM('Y','N','AREACODE','USER_CUSTOM_1','USER_CUSTOM_2','USER_CUSTOM_3','USER_CUSTOM_4',
    'USER_CUSTOM_5') DEFAULT 'N',
  cid_group_id VARCHAR(20) DEFAULT '---DISABLED---',
  cid_group_id_two VARCHAR(20) DEFAULT '---DISABLED---',
  campaign_vdad_exten VARCHAR(20) DEFAULT '8368',
  auto_alt_dial ENUM('NONE','ALT_ONLY','ADDR3_ONLY','ALT_AND_ADDR3','ALT_AND_EXTENDED','ALT_AND_ADDR3_AND_EXTENDED',
    'EXTENDED_ONLY','MULTI_LEAD') DEFAULT 'NONE',
  auto_alt_dial_statuses VARCHAR(255) DEFAULT ' B N NA DC -',
  queue_priority TINYINT(2) DEFAULT '50',
  closer_campaigns TEXT,
  campaign_allow_inbound ENUM('Y','N') DEFAULT 'N',
  inbound_queue_no_dial ENUM('DISABLED','ENABLED','ALL_SERVERS','ENABLED_WITH_CHAT','ALL_SERVERS_WITH_CHAT')
    DEFAULT 'DISABLED',
  drop_call_seconds TINYINT(3) DEFAULT '5',
  drop_action ENUM('HANGUP','MESSAGE','VOICEMAIL','IN_GROUP','AUDIO','CALLMENU','VMAIL_NO_INST') DEFAULT 'AUDIO',
  drop_inbound_group VARCHAR(20) DEFAULT '---NONE---',
  campaign_calldate DATETIME,
  scheduled_callbacks_auto_reschedule VARCHAR(10) DEFAULT 'DISABLED',
  dial_timeout_lead_container VARCHAR(40) DEFAULT 'DISABLED',
  hopper_hold_inserts ENUM('ENABLED','DISABLED','AUTONEXT') DEFAULT 'DISABLED',
  incall_tally_threshold_seconds SMALLINT(5) UNSIGNED DEFAULT '0',
  auto_alt_threshold TINYINT(3) UNSIGNED DEFAULT '0',
  agent_search_method VARCHAR(2) DEFAULT '',
  next_agent_call VARCHAR(40) DEFAULT 'longest_wait_time',
  local_call_time VARCHAR(10) DEFAULT '9am-9pm',
  hopper_level INT(8) UNSIGNED DEFAULT '1'
) ENGINE=MyISAM;

-- 6.4 Per-campaign real-time counters; FILL writes balance_trunk_fill.
CREATE TABLE vicidial_campaign_stats (
  campaign_id VARCHAR(20) PRIMARY KEY NOT NULL,
  update_time TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  dialable_leads INT(9) UNSIGNED DEFAULT '0',
  calls_today INT(9) UNSIGNED DEFAULT '0',
  answers_today INT(9) UNSIGNED DEFAULT '0',
  drops_today DECIMAL(12,3) DEFAULT '0',
  drops_today_pct VARCHAR(6) DEFAULT '0',
  drops_answers_today_pct VARCHAR(6) DEFAULT '0',
  calls_hour INT(9) UNSIGNED DEFAULT '0',
  answers_hour INT(9) UNSIGNED DEFAULT '0',
  drops_hour INT(9) UNSIGNED DEFAULT '0',
  drops_hour_pct VARCHAR(6) DEFAULT '0',
  calls_onemin INT(9) UNSIGNED DEFAULT '0',
  answers_onemin INT(9) UNSIGNED DEFAULT '0',
  drops_onemin INT(9) UNSIGNED DEFAULT '0',
  drops_onemin_pct VARCHAR(6) DEFAULT '0',
  differential_onemin VARCHAR(20) DEFAULT '0',
  agents_average_onemin VARCHAR(20) DEFAULT '0',
  balance_trunk_fill SMALLINT(5) UNSIGNED DEFAULT '0'
) ENGINE=MyISAM;

-- 6.5 The FILL input, written by AST_VDauto_dial.pl. No unique key on (campaign_id, server_ip).
CREATE TABLE vicidial_campaign_server_stats (
  campaign_id VARCHAR(20) NOT NULL,
  server_ip VARCHAR(15) NOT NULL,
  update_time TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  local_trunk_shortage SMALLINT(5) UNSIGNED DEFAULT '0',
  INDEX (campaign_id),
  INDEX (server_ip)
) ENGINE=MEMORY;

-- 6.6 Trunks a campaign holds (or is limited to) on a server.
CREATE TABLE vicidial_server_trunks (
  server_ip VARCHAR(15) NOT NULL,
  campaign_id VARCHAR(20) NOT NULL,
  dedicated_trunks SMALLINT(5) UNSIGNED DEFAULT '0',
  trunk_restriction ENUM('MAXIMUM_LIMIT','OVERFLOW_ALLOWED') DEFAULT 'OVERFLOW_ALLOWED',
  INDEX (campaign_id),
  INDEX (server_ip)
) ENGINE=MyISAM;

-- 6.7 Live dialer calls (one row per placed call until hangup cleanup).
CREATE TABLE vicidial_auto_calls (
  auto_call_id INT(9) UNSIGNED AUTO_INCREMENT PRIMARY KEY NOT NULL,
  server_ip VARCHAR(15) NOT NULL,
  campaign_id VARCHAR(20),
  status ENUM('SENT','RINGING','LIVE','XFER','PAUSED','CLOSER','BUSY','DISCONNECT','IVR') DEFAULT 'PAUSED',
  lead_id INT(9) UNSIGNED NOT NULL,
  uniqueid VARCHAR(20),
  callerid VARCHAR(20),
  channel VARCHAR(100),
  phone_code VARCHAR(10),
  phone_number VARCHAR(18),
  call_time DATETIME,
  call_type ENUM('IN','OUT','OUTBALANCE') DEFAULT 'OUT',
  stage VARCHAR(20) DEFAULT 'START',
  last_update_time TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  alt_dial VARCHAR(6) DEFAULT 'NONE',
  queue_priority TINYINT(2) DEFAULT '0',
  agent_only VARCHAR(20) DEFAULT '',
  agent_grab VARCHAR(20) DEFAULT '',
  queue_position SMALLINT(4) UNSIGNED DEFAULT '1',
  extension VARCHAR(100) DEFAULT '',
  agent_grab_extension VARCHAR(100) DEFAULT '',
  INDEX (uniqueid),
  INDEX (callerid),
  INDEX (call_time),
  INDEX (last_update_time)
) ENGINE=MEMORY;

-- 6.8 Leads queued for dialing.
CREATE TABLE vicidial_hopper (
  hopper_id INT(9) UNSIGNED AUTO_INCREMENT PRIMARY KEY NOT NULL,
  lead_id INT(9) UNSIGNED NOT NULL,
  campaign_id VARCHAR(8),
  status ENUM('READY','QUEUE','INCALL','DONE','HOLD','DNC','RHOLD','RQUEUE') DEFAULT 'READY',
  user VARCHAR(20),
  list_id BIGINT(14) UNSIGNED NOT NULL,
  gmt_offset_now DECIMAL(4,2) DEFAULT '0.00',
  state VARCHAR(2) DEFAULT '',
  alt_dial VARCHAR(6) DEFAULT 'NONE',
  priority TINYINT(2) DEFAULT '0',
  source VARCHAR(1) DEFAULT '',
  vendor_lead_code VARCHAR(20) DEFAULT '',
  INDEX (lead_id)
) ENGINE=MEMORY;

-- 6.9 Leads.
CREATE TABLE vicidial_list (
  lead_id INT(9) UNSIGNED AUTO_INCREMENT PRIMARY KEY NOT NULL,
  entry_date DATETIME,
  modify_date TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  status VARCHAR(6),
  user VARCHAR(20),
  vendor_lead_code VARCHAR(20),
  source_id VARCHAR(50),
  list_id BIGINT(14) UNSIGNED NOT NULL DEFAULT '0',
  gmt_offset_now DECIMAL(4,2) DEFAULT '0.00',
  called_since_last_reset ENUM('Y','N','Y1','Y2','Y3','Y4','Y5','Y6','Y7','Y8','Y9','Y10','D') DEFAULT 'N',
  phone_code VARCHAR(10),
  phone_number VARCHAR(18) NOT NULL,
  title VARCHAR(4),
  first_name VARCHAR(30),
  middle_initial VARCHAR(1),
  last_name VARCHAR(30),
  address1 VARCHAR(100),
  address2 VARCHAR(100),
  address3 VARCHAR(100),
  city VARCHAR(50),
  state VARCHAR(2),
  province VARCHAR(50),
  postal_code VARCHAR(10),
  country_code VARCHAR(3),
  gender ENUM('M','F','U') DEFAULT 'U',
  date_of_birth DATE,
  alt_phone VARCHAR(12),
  email VARCHAR(70),
  security_phrase VARCHAR(100),
  comments VARCHAR(255),
  called_count SMALLINT(5) UNSIGNED DEFAULT '0',
  last_local_call_time DATETIME,
  `rank` SMALLINT(5) NOT NULL DEFAULT '0',
  owner VARCHAR(20) DEFAULT '',
  entry_list_id BIGINT(14) UNSIGNED NOT NULL DEFAULT '0',
  INDEX (phone_number),
  INDEX (list_id),
  INDEX (called_since_last_reset),
  INDEX (status),
  INDEX (gmt_offset_now),
  INDEX (postal_code),
  INDEX (last_local_call_time),
  INDEX (`rank`),
  INDEX (owner),
  INDEX phone_list (phone_number, list_id),
  INDEX list_phone (list_id, phone_number),
  INDEX list_status (list_id, status)
) ENGINE=MyISAM;

-- 6.10 Lists (relevant columns, plus list_name).
CREATE TABLE vicidial_lists (
  list_id BIGINT(14) UNSIGNED PRIMARY KEY NOT NULL,
  list_name VARCHAR(30),
  campaign_id VARCHAR(8),
  active ENUM('Y','N'),
  list_lastcalldate DATETIME,
  campaign_cid_override VARCHAR(20) DEFAULT '',
  cid_group_id VARCHAR(20) DEFAULT '---DISABLED---',
  dial_prefix VARCHAR(20) DEFAULT '',
  auto_alt_threshold TINYINT(3) DEFAULT '-1',
  local_call_time VARCHAR(10) NOT NULL DEFAULT 'campaign',
  expiration_date DATE DEFAULT '2099-12-31'
) ENGINE=MyISAM;

-- 6.11 Extended alternate numbers of a lead.
CREATE TABLE vicidial_list_alt_phones (
  alt_phone_id INT(9) UNSIGNED AUTO_INCREMENT PRIMARY KEY NOT NULL,
  lead_id INT(9) UNSIGNED NOT NULL,
  phone_code VARCHAR(10),
  phone_number VARCHAR(18),
  alt_phone_note VARCHAR(30),
  alt_phone_count SMALLINT(5) UNSIGNED,
  active ENUM('Y','N') DEFAULT 'Y',
  INDEX (lead_id),
  INDEX (phone_number)
) ENGINE=MyISAM;

-- 6.12 The AMI action queue (AST_manager_send.pl) and fillreactor's audit trail of Originates.
CREATE TABLE vicidial_manager (
  man_id INT(9) UNSIGNED AUTO_INCREMENT PRIMARY KEY NOT NULL,
  uniqueid VARCHAR(20),
  entry_date DATETIME,
  status ENUM('NEW','QUEUE','SENT','UPDATED','DEAD'),
  response ENUM('Y','N'),
  server_ip VARCHAR(15) NOT NULL,
  channel VARCHAR(100),
  action VARCHAR(20),
  callerid VARCHAR(20),
  cmd_line_b VARCHAR(100),
  cmd_line_c VARCHAR(100),
  cmd_line_d VARCHAR(200),
  cmd_line_e VARCHAR(100),
  cmd_line_f VARCHAR(100),
  cmd_line_g VARCHAR(100),
  cmd_line_h VARCHAR(100),
  cmd_line_i VARCHAR(50),
  cmd_line_j VARCHAR(50),
  cmd_line_k VARCHAR(100),
  INDEX (callerid),
  INDEX (uniqueid),
  INDEX serverstat (server_ip, status)
) ENGINE=MyISAM;

-- 6.13 Logged-in agents (relevant columns). MyISAM, not MEMORY: closer_campaigns is TEXT.
CREATE TABLE vicidial_live_agents (
  live_agent_id INT(9) UNSIGNED AUTO_INCREMENT PRIMARY KEY,
  user VARCHAR(20),
  server_ip VARCHAR(15) NOT NULL,
  conf_exten VARCHAR(20),
  extension VARCHAR(100),
  status ENUM('READY','QUEUE','INCALL','PAUSED','CLOSER','MQUEUE') DEFAULT 'PAUSED',
  lead_id INT(9) UNSIGNED NOT NULL,
  campaign_id VARCHAR(8),
  uniqueid VARCHAR(20),
  callerid VARCHAR(20),
  channel VARCHAR(100),
  random_id INT(8) UNSIGNED,
  last_call_time DATETIME,
  last_update_time TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  last_call_finish DATETIME,
  closer_campaigns TEXT,
  call_server_ip VARCHAR(15),
  user_level TINYINT(3) UNSIGNED DEFAULT '0',
  comments VARCHAR(20),
  campaign_weight TINYINT(1) DEFAULT '0',
  calls_today SMALLINT(5) UNSIGNED DEFAULT '0',
  last_state_change DATETIME,
  outbound_autodial ENUM('Y','N') DEFAULT 'N',
  ra_user VARCHAR(20) DEFAULT '',
  ra_extension VARCHAR(100) DEFAULT '',
  ring_callerid VARCHAR(20) DEFAULT '',
  campaign_grade TINYINT(2) UNSIGNED DEFAULT '1',
  dial_campaign_id VARCHAR(8) DEFAULT '',
  INDEX (random_id),
  INDEX (last_call_time),
  INDEX (last_update_time),
  INDEX (last_call_finish),
  INDEX vlali (lead_id),
  INDEX vlaus (user)
) ENGINE=MyISAM;

-- 6.14 Trunk channels and client channels seen by AST_update.pl; FILL does not read them.
CREATE TABLE live_channels (
  channel VARCHAR(100) NOT NULL,
  server_ip VARCHAR(15) NOT NULL,
  channel_group VARCHAR(30),
  extension VARCHAR(100),
  channel_data VARCHAR(100)
) ENGINE=MEMORY;

CREATE TABLE live_sip_channels (
  channel VARCHAR(100) NOT NULL,
  server_ip VARCHAR(15) NOT NULL,
  channel_group VARCHAR(30),
  extension VARCHAR(100),
  channel_data VARCHAR(100)
) ENGINE=MEMORY;

-- Parked calls (minimal).
CREATE TABLE parked_channels (
  channel VARCHAR(100) NOT NULL,
  server_ip VARCHAR(15) NOT NULL,
  channel_group VARCHAR(30),
  extension VARCHAR(100),
  parked_by VARCHAR(100),
  parked_time DATETIME
) ENGINE=MEMORY;

-- 6.15 Tables written during FILL and the call lifecycle.
CREATE TABLE call_log (
  uniqueid VARCHAR(20) PRIMARY KEY NOT NULL,
  channel VARCHAR(100),
  channel_group VARCHAR(30),
  type VARCHAR(10),
  server_ip VARCHAR(15),
  extension VARCHAR(100),
  number_dialed VARCHAR(15),
  caller_code VARCHAR(20),
  start_time DATETIME,
  start_epoch INT(10),
  end_time DATETIME,
  end_epoch INT(10),
  length_in_sec INT(10),
  length_in_min DOUBLE(8,2),
  INDEX (caller_code),
  INDEX (server_ip),
  INDEX (channel),
  INDEX (start_time),
  INDEX (end_time)
) ENGINE=MyISAM;

CREATE TABLE vicidial_dial_log (
  caller_code VARCHAR(30) NOT NULL,
  lead_id INT(9) UNSIGNED DEFAULT '0',
  server_ip VARCHAR(15),
  call_date DATETIME,
  extension VARCHAR(100) DEFAULT '',
  channel VARCHAR(100) DEFAULT '',
  context VARCHAR(100) DEFAULT '',
  timeout MEDIUMINT(7) UNSIGNED DEFAULT '0',
  outbound_cid VARCHAR(100) DEFAULT '',
  sip_hangup_cause SMALLINT(4) UNSIGNED DEFAULT '0',
  sip_hangup_reason VARCHAR(50) DEFAULT '',
  uniqueid VARCHAR(20) DEFAULT '',
  INDEX (caller_code),
  INDEX (lead_id),
  INDEX (call_date)
) ENGINE=MyISAM;

CREATE TABLE vicidial_dial_cid_log (
  caller_code VARCHAR(30) NOT NULL,
  call_date DATETIME,
  call_type ENUM('OUT','OUTBALANCE','MANUAL','OVERRIDE','3WAY') DEFAULT 'OUT',
  call_alt VARCHAR(20) DEFAULT '',
  outbound_cid VARCHAR(20) DEFAULT '',
  outbound_cid_type VARCHAR(20) DEFAULT '',
  INDEX (caller_code),
  INDEX (call_date)
) ENGINE=MyISAM;

CREATE TABLE vicidial_lead_24hour_calls (
  lead_id INT(9) UNSIGNED NOT NULL,
  list_id BIGINT(14) UNSIGNED DEFAULT '0',
  call_date DATETIME,
  phone_number VARCHAR(18),
  phone_code VARCHAR(10),
  state VARCHAR(2),
  call_type ENUM('MANUAL','AUTO','') DEFAULT '',
  INDEX (lead_id),
  INDEX (call_date),
  INDEX (phone_number)
) ENGINE=MyISAM;

CREATE TABLE vicidial_lead_call_daily_counts (
  lead_id INT(9) UNSIGNED NOT NULL,
  list_id BIGINT(14) UNSIGNED DEFAULT '0',
  called_count_total TINYINT(3) UNSIGNED DEFAULT '0',
  called_count_auto TINYINT(3) UNSIGNED DEFAULT '0',
  called_count_manual TINYINT(3) UNSIGNED DEFAULT '0',
  modify_date DATETIME,
  UNIQUE INDEX vlcdc_lead (lead_id),
  INDEX (list_id)
) ENGINE=MyISAM;

CREATE TABLE vicidial_phone_number_call_daily_counts (
  phone_number VARCHAR(18) NOT NULL,
  called_count TINYINT(3) UNSIGNED DEFAULT '0',
  modify_date DATETIME,
  UNIQUE INDEX vpncdc_phone (phone_number)
) ENGINE=MyISAM;

CREATE TABLE vicidial_recent_ascb_calls (
  call_date DATETIME,
  callback_date DATETIME,
  callback_id INT(9) UNSIGNED,
  caller_code VARCHAR(30),
  lead_id INT(9) UNSIGNED,
  server_ip VARCHAR(60),
  orig_status VARCHAR(6) DEFAULT 'CALLBK',
  reschedule VARCHAR(10),
  list_id BIGINT(14) UNSIGNED,
  rescheduled ENUM('U','P','Y','N') DEFAULT 'U',
  UNIQUE INDEX vrac_caller_code (caller_code),
  INDEX (call_date)
) ENGINE=MyISAM;

-- campaign_id holds a campaign id or a CID group id.
CREATE TABLE vicidial_campaign_cid_areacodes (
  campaign_id VARCHAR(20) NOT NULL,
  areacode VARCHAR(5) NOT NULL,
  outbound_cid VARCHAR(20),
  active ENUM('Y','N','') DEFAULT '',
  cid_description VARCHAR(50),
  call_count_today MEDIUMINT(7) DEFAULT '0',
  UNIQUE INDEX campareacode (campaign_id, areacode, outbound_cid)
) ENGINE=MyISAM;

CREATE TABLE vicidial_cid_groups (
  cid_group_id VARCHAR(20) PRIMARY KEY NOT NULL,
  cid_group_notes VARCHAR(255) DEFAULT '',
  cid_group_type ENUM('AREACODE','STATE','NONE') DEFAULT 'AREACODE',
  user_group VARCHAR(20) DEFAULT '---ALL---',
  cid_auto_rotate_minutes MEDIUMINT(7) UNSIGNED DEFAULT '0',
  cid_auto_rotate_minimum MEDIUMINT(7) UNSIGNED DEFAULT '0',
  cid_auto_rotate_calls MEDIUMINT(7) UNSIGNED DEFAULT '0',
  cid_last_auto_rotate DATETIME,
  cid_auto_rotate_cid VARCHAR(20) DEFAULT ''
) ENGINE=MyISAM;

-- The generic table; AST_update_AMI2.pl also makes per-server copies (cid_channels_recent_<IPpadded>)
-- without server_ip, which are not created here.
CREATE TABLE cid_channels_recent (
  caller_id_name VARCHAR(30) NOT NULL,
  connected_line_name VARCHAR(30) NOT NULL,
  server_ip VARCHAR(15),
  call_date DATETIME,
  channel VARCHAR(100) DEFAULT '',
  dest_channel VARCHAR(100) DEFAULT '',
  linkedid VARCHAR(20) DEFAULT '',
  dest_uniqueid VARCHAR(20) DEFAULT '',
  uniqueid VARCHAR(20) DEFAULT '',
  INDEX (call_date)
) ENGINE=MyISAM;

-- AST_VDauto_dial.pl's per-campaign calculation log.
CREATE TABLE vicidial_campaign_stats_debug (
  campaign_id VARCHAR(20) NOT NULL,
  server_ip VARCHAR(15) NOT NULL DEFAULT '',
  entry_time DATETIME,
  update_time TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  debug_output TEXT,
  adapt_output TEXT,
  UNIQUE INDEX vcsd_campaign_server (campaign_id, server_ip)
) ENGINE=MyISAM;

-- Read by FILL for the dial-timeout-lead override (spec 2.7 e).
CREATE TABLE vicidial_settings_containers (
  container_id VARCHAR(40) PRIMARY KEY NOT NULL,
  container_notes VARCHAR(255) DEFAULT '',
  container_type VARCHAR(40) DEFAULT 'OTHER',
  user_group VARCHAR(20) DEFAULT '---ALL---',
  container_entry TEXT
) ENGINE=MyISAM;

-- Scheduled callbacks (minimal), read by the auto-reschedule step (spec 2.7 l).
CREATE TABLE vicidial_callbacks (
  callback_id INT(9) UNSIGNED AUTO_INCREMENT PRIMARY KEY NOT NULL,
  lead_id INT(9) UNSIGNED,
  list_id BIGINT(14) UNSIGNED,
  campaign_id VARCHAR(8),
  status VARCHAR(10),
  entry_time DATETIME,
  callback_time DATETIME,
  modify_date TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  user VARCHAR(20),
  recipient ENUM('USERONLY','ANYONE'),
  comments VARCHAR(255),
  user_group VARCHAR(20),
  lead_status VARCHAR(6) DEFAULT 'CALLBK',
  INDEX (lead_id),
  INDEX (status),
  INDEX (callback_time)
) ENGINE=MyISAM;

-- Country code and areacode to state/country, read for the 24-hour call limit (spec 2.7 q).
CREATE TABLE vicidial_phone_codes (
  country_code SMALLINT(5) UNSIGNED,
  country CHAR(3),
  areacode CHAR(3),
  state VARCHAR(4),
  GMT_offset VARCHAR(6),
  DST ENUM('Y','N'),
  DST_range VARCHAR(8),
  geographic_description VARCHAR(100),
  tz_code VARCHAR(4) DEFAULT '',
  INDEX (country_code),
  INDEX (areacode)
) ENGINE=MyISAM;

CREATE TABLE vicidial_statuses (
  status VARCHAR(6) PRIMARY KEY NOT NULL,
  status_name VARCHAR(30),
  selectable ENUM('Y','N'),
  human_answered ENUM('Y','N') DEFAULT 'N',
  category VARCHAR(20) DEFAULT 'UNDEFINED',
  sale ENUM('Y','N') DEFAULT 'N',
  dnc ENUM('Y','N') DEFAULT 'N',
  customer_contact ENUM('Y','N') DEFAULT 'N',
  not_interested ENUM('Y','N') DEFAULT 'N',
  unworkable ENUM('Y','N') DEFAULT 'N',
  scheduled_callback ENUM('Y','N') DEFAULT 'N',
  completed ENUM('Y','N') DEFAULT 'N'
) ENGINE=MyISAM;

CREATE TABLE vicidial_campaign_statuses (
  status VARCHAR(6) NOT NULL,
  status_name VARCHAR(30),
  selectable ENUM('Y','N'),
  campaign_id VARCHAR(8),
  human_answered ENUM('Y','N') DEFAULT 'N',
  category VARCHAR(20) DEFAULT 'UNDEFINED',
  sale ENUM('Y','N') DEFAULT 'N',
  dnc ENUM('Y','N') DEFAULT 'N',
  customer_contact ENUM('Y','N') DEFAULT 'N',
  not_interested ENUM('Y','N') DEFAULT 'N',
  unworkable ENUM('Y','N') DEFAULT 'N',
  scheduled_callback ENUM('Y','N') DEFAULT 'N',
  completed ENUM('Y','N') DEFAULT 'N',
  INDEX (campaign_id)
) ENGINE=MyISAM;

-- One row per finished outbound call (written by the AGI/hangup side of the lifecycle).
CREATE TABLE vicidial_log (
  uniqueid VARCHAR(20) PRIMARY KEY NOT NULL,
  lead_id INT(9) UNSIGNED NOT NULL,
  list_id BIGINT(14) UNSIGNED,
  campaign_id VARCHAR(8),
  call_date DATETIME,
  start_epoch INT(10) UNSIGNED,
  end_epoch INT(10) UNSIGNED,
  length_in_sec INT(10),
  status VARCHAR(6),
  phone_code VARCHAR(10),
  phone_number VARCHAR(18),
  user VARCHAR(20),
  comments VARCHAR(255),
  processed ENUM('Y','N'),
  user_group VARCHAR(20),
  term_reason ENUM('CALLER','AGENT','QUEUETIMEOUT','ABANDON','AFTERHOURS','NONE','SYSTEM') DEFAULT 'NONE',
  alt_dial VARCHAR(6) DEFAULT 'NONE',
  called_count SMALLINT(5) UNSIGNED DEFAULT '0',
  INDEX (lead_id),
  INDEX (call_date)
) ENGINE=MyISAM;

CREATE TABLE vicidial_log_extended (
  uniqueid VARCHAR(50) PRIMARY KEY NOT NULL,
  server_ip VARCHAR(15),
  call_date DATETIME,
  lead_id INT(9) UNSIGNED,
  caller_code VARCHAR(30) NOT NULL,
  custom_call_id VARCHAR(100),
  start_url_processed ENUM('N','Y','U') DEFAULT 'N',
  dispo_url_processed ENUM('N','Y','F','XY','XF') DEFAULT 'N',
  multi_alt_processed ENUM('N','Y','U') DEFAULT 'N',
  noanswer_processed ENUM('N','Y','U') DEFAULT 'N',
  INDEX (call_date),
  INDEX (lead_id),
  INDEX (caller_code)
) ENGINE=MyISAM;
